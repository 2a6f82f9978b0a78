"""/metrics has dispatch latency (created -> claimed) and job duration histograms per
workflow, next to worker health and the jobs in flight on each worker (issue 12)."""

from __future__ import annotations

import httpx

from tests.realtime.conftest import User
from tests.realtime.harness import Running, graphql, submit, until

READ = """query($id: ID!) { job(id: $id) { ... on GenerationJob { status } } }"""


def samples(text: str) -> dict[str, float]:
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


async def test_dispatch_and_duration_histograms_per_workflow(
    server: Running, emulator: str, users: dict[str, User]
) -> None:
    job = await submit(server.url, users["alice"].token)

    async def completed() -> bool | None:
        found = (await graphql(server.url, users["alice"].token, READ, {"id": job}))["data"]
        return True if found["job"]["status"] == "COMPLETED" else None

    await until(completed, within=60)

    async def scraped() -> dict[str, float] | None:
        async with httpx.AsyncClient(timeout=10) as http:
            values = samples((await http.get(f"{server.url}/metrics")).text)
        key = 'comfygraph_job_seconds_count{status="completed",workflow="product-image"}'
        return values if values.get(key, 0) >= 1 else None  # the listener runs after the event

    values = await until(scraped, within=30)
    assert values['comfygraph_dispatch_seconds_count{workflow="product-image"}'] >= 1
    assert values['comfygraph_dispatch_seconds_bucket{le="+Inf",workflow="product-image"}'] >= 1
    assert values['comfygraph_job_seconds_sum{status="completed",workflow="product-image"}'] > 0
    assert values[f'comfygraph_worker_healthy{{worker="{emulator}"}}'] == 1
    assert f'comfygraph_worker_running_jobs{{worker="{emulator}"}}' in values
