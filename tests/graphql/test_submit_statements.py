"""What a signed-in submitJob costs in SQL statements before and with its INSERT,
counted on the wire by a proxy in front of PostgreSQL (tests/graphql/pgproxy.py): the
rate counter, the user's active jobs and their storage quota are one statement, so a
refusal costs one statement and a submission three (the checks, the INSERT, the status
event's NOTIFY). With counters in memory or Redis (Redis runs when BROADCAST_URL is
Redis), the active jobs and the quota are still one statement."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from comfygraph.db.jobs import create_job
from comfygraph.db.kinds import OutputType
from comfygraph.db.retention import set_storage_quota
from comfygraph.server.app import create_app
from comfygraph.server.settings import Settings
from comfygraph.studio.auth import issue_token
from tests.db.factories import make_user
from tests.graphql.client import GraphQLClient
from tests.graphql.conftest import SECRET
from tests.graphql.pgproxy import StatementCounter
from tests.servers import serve_in_thread

SUBMIT = """mutation($input: SubmitJobInput!) { submitJob(input: $input) {
  job { ... on GenerationJob { id } } userErrors { code field message retryAfterSeconds } } }"""
PRODUCT = {"workflowName": "product-image", "parameters": {"prompt": "a shoe", "width": 256,
                                                             "height": 256}}  # fmt: skip
PER_MINUTE = 5  # more than a warm-up and three measured submissions
ACTIVE = 8  # more than PER_MINUTE: the per-minute limit is met first when submitting

#: statements per case: the counters (and the broadcast) in PostgreSQL, memory or Redis
COSTS = {
    "postgres": {"submitted": 3, "rate_limited": 1, "busy": 1, "quota": 1},
    "memory": {"submitted": 2, "rate_limited": 0, "busy": 1, "quota": 1},
    "redis": {"submitted": 2, "rate_limited": 0, "busy": 1, "quota": 1},
}
REDIS = os.environ.get("BROADCAST_URL", "")


@dataclass
class Counted:
    counters: str
    counter: StatementCounter
    url: str


@pytest.fixture(scope="module", params=["postgres", "memory", "redis"])
def counted(
    request: pytest.FixtureRequest, dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Counted]:
    if request.param == "redis" and not REDIS.startswith("redis"):
        pytest.skip("BROADCAST_URL is not Redis")
    counter = StatementCounter(dsn)
    # One pooled connection: a request never meets a fresh connection's first-use
    # statements (type introspection). A quota for everyone, so the usage is read too.
    with counter.running() as proxied:
        broadcast = {"postgres": proxied, "memory": "memory://local", "redis": REDIS}
        settings = Settings(
            database_url=proxied, broadcast_url=broadcast[request.param],
            data_dir=Path(tmp_path_factory.mktemp("d")), jwt_secret=SECRET,
            db_pool_min=1, db_pool_max=1, storage_quota_bytes=10**12,
            rate_submissions_per_minute=PER_MINUTE, rate_active_jobs=ACTIVE,
        )  # fmt: skip
        with serve_in_thread(create_app(settings, dsn=proxied)) as url:
            yield Counted(request.param, counter, url)


async def _user(pool: asyncpg.Pool, counted: Counted) -> tuple[asyncpg.Record, GraphQLClient]:
    async with pool.acquire() as conn:  # not through the proxy: not counted
        row = await make_user(conn)
    return row, GraphQLClient(counted.url, issue_token(SECRET, row["id"]))


def _submit(client: GraphQLClient) -> dict[str, Any]:
    return client.data(SUBMIT, {"input": PRODUCT})["submitJob"]  # type: ignore[no-any-return]


def _least_cost(
    counted: Counted, client: GraphQLClient, check: Callable[[dict[str, Any]], None]
) -> int:
    """The fewest statements of three submissions, each checked: the proxy also sees
    the app's background loops (webhook polls) and an expired viewer-cache lookup,
    which only add."""
    check(_submit(client))  # warm: the viewer cache, statement caches
    costs = []
    for _ in range(3):
        before = counted.counter.statements
        payload = _submit(client)
        costs.append(counted.counter.statements - before)
        check(payload)
    print(f"{counted.counters} counters: {costs}")
    return min(costs)


def _refused(code: str, field: list[str] | None, words: str) -> Callable[[dict[str, Any]], None]:
    def check(payload: dict[str, Any]) -> None:
        assert payload["job"] is None, payload
        [error] = payload["userErrors"]
        assert (error["code"], error["field"]) == (code, field), error
        assert words in error["message"], error

    return check


def _submitted(payload: dict[str, Any]) -> None:
    assert payload["userErrors"] == [] and payload["job"]["id"], payload


async def test_a_submission(counted: Counted, pool: asyncpg.Pool) -> None:
    _, client = await _user(pool, counted)
    assert _least_cost(counted, client, _submitted) == COSTS[counted.counters]["submitted"]


async def test_a_submission_over_the_minutes_limit(counted: Counted, pool: asyncpg.Pool) -> None:
    _, client = await _user(pool, counted)
    for _ in range(PER_MINUTE):
        _submitted(_submit(client))
    check = _refused("RATE_LIMITED", None, f"at most {PER_MINUTE} submissions a minute")
    assert _least_cost(counted, client, check) == COSTS[counted.counters]["rate_limited"]


async def test_a_submission_over_the_active_jobs_limit(
    counted: Counted, pool: asyncpg.Pool
) -> None:
    row, client = await _user(pool, counted)
    async with pool.acquire() as conn:  # pending jobs, without a hit on the counter
        for _ in range(ACTIVE):
            await create_job(conn, OutputType.IMAGE, user_id=row["id"],
                             workflow_name="product-image", parameters={})  # fmt: skip
    check = _refused("RATE_LIMITED", None, f"{ACTIVE} jobs are pending or running")
    assert _least_cost(counted, client, check) == COSTS[counted.counters]["busy"]


async def test_a_submission_over_the_storage_quota(counted: Counted, pool: asyncpg.Pool) -> None:
    row, client = await _user(pool, counted)
    async with pool.acquire() as conn:
        await set_storage_quota(conn, row["id"], 0)
    check = _refused("QUOTA_EXCEEDED", ["input"], "storage quota is used up")
    assert _least_cost(counted, client, check) == COSTS[counted.counters]["quota"]
