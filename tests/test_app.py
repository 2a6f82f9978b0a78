from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from comfygraph.server.app import create_app
from comfygraph.server.settings import Settings
from tests.servers import serve_in_thread


@pytest.fixture(scope="module")
def base_url(dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = Path(tmp_path_factory.mktemp("data"))
    settings = Settings(database_url=dsn, data_dir=data)
    with serve_in_thread(create_app(settings, dsn=dsn)) as url:
        yield url


def test_graphql_answers_typename(base_url: str) -> None:
    r = httpx.post(f"{base_url}/graphql", json={"query": "{ __typename }"})
    assert r.status_code == 200
    assert r.json() == {"data": {"__typename": "Query"}}


def test_graphiql_in_a_browser(base_url: str) -> None:
    r = httpx.get(f"{base_url}/graphql", headers={"accept": "text/html"})
    assert r.status_code == 200 and "graphiql" in r.text.lower()


def test_health_and_readiness(base_url: str) -> None:
    assert httpx.get(f"{base_url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{base_url}/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok"
    assert ready.json()["checks"]["migrations"] == "ok"


def test_metrics_in_prometheus_text_format(base_url: str) -> None:
    httpx.post(f"{base_url}/graphql", json={"query": "{ __typename }"})
    r = httpx.get(f"{base_url}/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'comfygraph_http_request_seconds_count{method="POST",path="/graphql",status="200"}' in (
        text
    )
    assert "comfygraph_tracked_jobs" in text and "comfygraph_bus_subscribers" in text


async def test_metrics_show_the_queue_an_autoscaler_needs(base_url: str, pool) -> None:  # type: ignore[no-untyped-def]
    async with pool.acquire() as conn:
        await conn.execute(
            """INSERT INTO image_jobs (workflow_name, status, created_at)
               VALUES ('metrics-wf', 'pending', now() - interval '90 seconds')"""
        )
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{base_url}/metrics")).text
    values = {
        line.split(" ")[0]: float(line.split(" ")[-1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert values["comfygraph_queue_depth"] >= 1
    assert values["comfygraph_queue_oldest_seconds"] >= 89
    assert values['comfygraph_workflow_jobs{status="pending",workflow="metrics-wf"}'] == 1
    for name in ("comfygraph_websockets", "comfygraph_subscriptions",
                 "comfygraph_publish_failures_total", "comfygraph_publish_waiting"):  # fmt: skip
        assert name in values, name


def test_graphql_latency_by_operation_name(base_url: str) -> None:
    httpx.post(f"{base_url}/graphql", json={"query": "query Probe { __typename }"})
    text = httpx.get(f"{base_url}/metrics").text
    assert 'comfygraph_graphql_seconds_count{operation="Probe",type="query"} 1.0' in text
