"""What running jobs costs the database, counted on the wire by a proxy in front of
PostgreSQL (tests/graphql/pgproxy.py): a dispatch pass that finds nothing new to
classify, and a finished job's node timings. Each runs once per job or more, so each
statement here is paid at the fleet's job rate."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from comfygraph.db.jobs import create_job
from comfygraph.db.kinds import OutputType
from comfygraph.db.node_stats import TOTAL, load_node_stats, record_node_stats
from comfygraph.db.pool import create_pool
from comfygraph.db.scheduling import Classified, classify_pending
from tests.db.factories import make_user
from tests.graphql.pgproxy import StatementCounter


@pytest.fixture
async def counted(dsn: str) -> AsyncIterator[tuple[StatementCounter, asyncpg.Connection]]:
    counter = StatementCounter(dsn)
    with counter.running() as proxied:
        pool = await create_pool(proxied, min_size=1, max_size=1)  # the app's codecs
        try:
            async with pool.acquire() as conn:
                yield counter, conn
        finally:
            await pool.close()


def round_trips(counter: StatementCounter) -> int:
    """Statements of the extended protocol plus simple queries (BEGIN, COMMIT)."""
    counts = counter.snapshot()
    return counts["E"] + counts["Q"]


def nothing_needed(workflow: str, parameters: object) -> Classified:
    return Classified([], [], "")


async def test_a_pass_with_nothing_to_classify_is_one_statement(
    counted: tuple[StatementCounter, asyncpg.Connection],
) -> None:
    counter, conn = counted
    await classify_pending(conn, nothing_needed)  # prepared statements out of the way
    before = round_trips(counter)
    assert await classify_pending(conn, nothing_needed) == 0
    assert round_trips(counter) - before == 1  # was a transaction around 4 SELECTs


async def test_classifying_reads_every_table_in_one_statement(
    counted: tuple[StatementCounter, asyncpg.Connection],
) -> None:
    counter, conn = counted
    user = await make_user(conn)
    for kind in (OutputType.IMAGE, OutputType.VIDEO):
        await create_job(conn, kind, user_id=user["id"], workflow_name="w", parameters={})
    await classify_pending(conn, nothing_needed)  # types introspected once
    for kind in (OutputType.IMAGE, OutputType.VIDEO):
        await create_job(conn, kind, user_id=user["id"], workflow_name="w", parameters={})
    before = counter.snapshot()
    assert await classify_pending(conn, nothing_needed) == 2
    spent = counter.snapshot() - before
    # the check, the locked read, fair share (read, virtual time, write), one UPDATE
    # per table with jobs; BEGIN and COMMIT
    assert spent["E"] == 1 + 1 + 3 + 2, spent
    assert spent["Q"] == 2, spent


async def test_a_jobs_node_timings_are_one_statement(
    counted: tuple[StatementCounter, asyncpg.Connection],
) -> None:
    counter, conn = counted
    durations = {str(node): 0.1 * node for node in range(1, 8)}
    await record_node_stats(conn, "warm-up", durations, 2.5)  # types introspected once
    before = round_trips(counter)
    await record_node_stats(conn, "seven-nodes", durations, 2.5)
    assert round_trips(counter) - before == 1  # was one per node
    await record_node_stats(conn, "seven-nodes", {**durations, "1": 0.3}, 3.5)
    stats = await load_node_stats(conn, "seven-nodes")
    assert set(stats) == {*durations, TOTAL}
    assert stats["1"] == pytest.approx(0.2) and stats[TOTAL] == pytest.approx(3.0)
