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


def test_root_redirects_to_graphql(base_url: str) -> None:
    r = httpx.get(f"{base_url}/")
    assert r.status_code == 307 and r.headers["location"] == "/graphql"


def test_in_thread_servers_write_no_access_log(tmp_path: Path) -> None:
    """The main server's access log (uvicorn's logger is process-wide) stays free of
    the lines of servers run in a thread, such as the demo's emulator worker."""
    import logging

    from comfygraph.emulator import create_emulator_app

    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    access = logging.getLogger("uvicorn.access")
    handler, level = Keep(), access.level
    access.addHandler(handler)  # as the main server's log config does
    access.setLevel(logging.INFO)
    try:
        with serve_in_thread(create_emulator_app(output_dir=tmp_path)) as url:
            assert httpx.get(f"{url}/system_stats").status_code == 200
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
    assert seen == []


def test_invalid_id_message_uses_the_right_article() -> None:
    from comfygraph.schema.errors import ApiError
    from comfygraph.schema.node import from_global_id, to_global_id

    session_id = to_global_id("Session", __import__("uuid").uuid4())
    with pytest.raises(ApiError) as caught:
        from_global_id(session_id, expect=frozenset({"AudioJob", "ImageJob", "User"}))
    assert str(caught.value) == "expected the id of an AudioJob or an ImageJob or a User"


def test_graphiql_is_branded_with_the_tour(base_url: str) -> None:
    page = httpx.get(f"{base_url}/graphql", headers={"accept": "text/html"}).text
    assert "<title>comfygraph GraphiQL</title>" in page and "Strawberry GraphiQL" not in page
    assert "defaultTabs" in page and "jobProgress" in page and "submitJob" in page
    assert "Welcome to GraphiQL" not in page.split("parameters.q ||")[1][:200]
    assert "https://unpkg.com/graphiql" in page  # no local assets configured


def test_graphiql_with_a_token_and_local_assets(dsn: str, tmp_path: Path) -> None:
    assets = tmp_path / "assets"
    (assets / "react@18.2.0" / "umd").mkdir(parents=True)
    (assets / "react@18.2.0" / "umd" / "react.production.min.js").write_text("// react")
    settings = Settings(database_url=dsn, data_dir=tmp_path / "data", graphiql_token="tok-123",
                        graphiql_assets_dir=assets)  # fmt: skip
    with serve_in_thread(create_app(settings, dsn=dsn)) as url:
        page = httpx.get(f"{url}/graphql", headers={"accept": "text/html"}).text
        served = httpx.get(f"{url}/graphiql-assets/react@18.2.0/umd/react.production.min.js")
    assert "unpkg.com" not in page and '"/graphiql-assets/react@18.2.0/' in page
    assert "Bearer tok-123" in page
    assert served.status_code == 200 and served.text == "// react"


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
