from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from comfygraph.db.feed import Cursor, JobQuery, job_count, job_page
from comfygraph.db.jobs import create_job, soft_delete
from comfygraph.db.kinds import OutputType
from comfygraph.db.visibility import ANONYMOUS, Scope, Viewer
from tests.db.factories import make_user

BASE = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
async def world(pool: asyncpg.Pool) -> dict[str, object]:
    """Two users' jobs over the four tables, many sharing a created_at, some deleted."""
    rng = random.Random(7)
    async with pool.acquire() as conn:
        alice, bob = await make_user(conn), await make_user(conn)
        rows = []
        for i in range(120):
            kind = rng.choice(list(OutputType))
            owner = rng.choice([alice, bob])
            # Only 15 distinct timestamps: ties must be broken by id.
            created = BASE + timedelta(seconds=rng.randrange(15))
            row, _ = await create_job(
                conn, kind, user_id=owner["id"], workflow_name=rng.choice(["a", "b", "c"]),
                parameters={"i": i}, public=rng.random() < 0.4, created_at=created,
                status=rng.choice(["pending", "processing", "completed", "failed"]),
            )  # fmt: skip
            if rng.random() < 0.1:
                row = await soft_delete(conn, kind, row["id"])
            rows.append((kind, row))
    return {"alice": alice, "bob": bob, "rows": rows}


def _expected(rows: list, keep) -> list[uuid.UUID]:  # type: ignore[no-untyped-def]
    live = [r for _k, r in rows if r["deleted_at"] is None and keep(_k, r)]
    live.sort(key=lambda r: (r["created_at"], r["id"]), reverse=True)
    return [r["id"] for r in live]


async def _walk(pool: asyncpg.Pool, viewer: Viewer, query: JobQuery, size: int) -> list:
    seen, after = [], None
    async with pool.acquire() as conn:
        for _ in range(1000):
            page = await job_page(conn, viewer, query, first=size, after=after)
            seen += [r["id"] for r in page.rows]
            if not page.has_next:
                break
            last = page.rows[-1]
            after = Cursor(last["created_at"], last["id"])
        assert await job_count(conn, viewer, query) == len(seen)
    return seen


@pytest.mark.parametrize("size", [1, 7, 50, 200])
async def test_unified_feed_returns_every_row_once_newest_first(
    pool: asyncpg.Pool, world: dict, size: int
) -> None:
    admin = Viewer(uuid.uuid4(), is_admin=True)
    got = await _walk(pool, admin, JobQuery(scope=Scope.ALL), size)
    assert got == _expected(world["rows"], lambda k, r: True)
    assert len(got) == len(set(got))


@pytest.mark.parametrize("scope", list(Scope))
async def test_scopes(pool: asyncpg.Pool, world: dict, scope: Scope) -> None:
    alice = world["alice"]["id"]
    viewer = Viewer(alice)
    keep = {
        Scope.MINE: lambda k, r: r["user_id"] == alice,
        Scope.PUBLIC: lambda k, r: r["public"],
        Scope.ALL: lambda k, r: r["user_id"] == alice or r["public"],
    }[scope]
    assert await _walk(pool, viewer, JobQuery(scope=scope), 9) == _expected(world["rows"], keep)


async def test_anonymous_sees_only_public(pool: asyncpg.Pool, world: dict) -> None:
    for scope in (Scope.ALL, Scope.PUBLIC):
        got = await _walk(pool, ANONYMOUS, JobQuery(scope=scope), 11)
        assert got == _expected(world["rows"], lambda k, r: r["public"])
    assert await _walk(pool, ANONYMOUS, JobQuery(scope=Scope.MINE), 11) == []


async def test_filters_combine(pool: asyncpg.Pool, world: dict) -> None:
    bob = world["bob"]["id"]
    query = JobQuery(
        scope=Scope.MINE,
        output_types=frozenset({OutputType.IMAGE, OutputType.VIDEO}),
        workflow_names=("a", "c"),
        statuses=("pending", "completed"),
        created_after=BASE + timedelta(seconds=2),
        created_before=BASE + timedelta(seconds=12),
    )

    def keep(kind: OutputType, r: asyncpg.Record) -> bool:
        return (
            r["user_id"] == bob
            and kind in query.output_types
            and r["workflow_name"] in ("a", "c")
            and r["status"] in ("pending", "completed")
            and BASE + timedelta(seconds=2) < r["created_at"] < BASE + timedelta(seconds=12)
        )

    expected = _expected(world["rows"], keep)
    assert expected, "the data set should exercise this filter"
    assert await _walk(pool, Viewer(bob), query, 4) == expected


async def test_soft_deleted_rows_never_appear(pool: asyncpg.Pool, world: dict) -> None:
    deleted = {r["id"] for _k, r in world["rows"] if r["deleted_at"] is not None}
    assert deleted
    got = await _walk(pool, Viewer(uuid.uuid4(), is_admin=True), JobQuery(scope=Scope.ALL), 13)
    assert not deleted & set(got)
