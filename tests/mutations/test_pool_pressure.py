"""Job mutations under a small database pool: a request never holds one pooled
connection while it waits for a second, so a burst larger than the pool cannot
leave every request waiting on the others."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from comfygraph.db.jobs import create_job
from comfygraph.db.kinds import OutputType
from tests.graphql.client import gid
from tests.mutations.conftest import App

BURST = 12
RETRY = "mutation($id: ID!) { retryJob(id: $id) { job { __typename } userErrors { code } } }"
CANCEL = "mutation($id: ID!) { cancelJob(id: $id) { job { __typename } userErrors { code } } }"


@pytest.fixture(scope="module")
def app_options() -> dict[str, Any]:
    return {"db_pool_min": 1, "db_pool_max": 2}


async def test_a_burst_of_retries_and_cancels(app: App, pool: asyncpg.Pool) -> None:
    jobs = []
    async with pool.acquire() as conn:
        for _ in range(BURST):
            row, _ = await create_job(conn, OutputType.IMAGE, user_id=app.uid("alice"),
                                      workflow_name="product-image", status="failed",
                                      parameters={"prompt": "a shoe", "width": 256,
                                                  "height": 256})  # fmt: skip
            jobs.append(gid("ImageJob", row["id"]))
    alice = app.clients["alice"]
    async with asyncio.timeout(20):
        answers = await asyncio.gather(
            *(alice.data(RETRY, {"id": job}) for job in jobs),
            *(alice.data(CANCEL, {"id": job}) for job in jobs),
        )
    retried, cancelled = answers[:BURST], answers[BURST:]
    assert all(a["retryJob"]["job"] == {"__typename": "ImageJob"} for a in retried)
    assert all(a["cancelJob"]["userErrors"] == [{"code": "NOT_CANCELLABLE"}] for a in cancelled)
