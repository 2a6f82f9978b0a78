from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import asyncpg

from comfygraph.db.migrate import apply_migrations, load_migrations

EXPECTED_TABLES = {
    "users", "video_jobs", "image_jobs", "text_jobs", "audio_jobs", "sessions", "assets",
    "generation_costs", "websocket_connections", "schema_migrations", "job_idempotency",
}  # fmt: skip


async def _tables(conn: asyncpg.Connection) -> set[str]:
    rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {r["tablename"] for r in rows}


async def _schema_fingerprint(conn: asyncpg.Connection) -> list[tuple[str, ...]]:
    rows = await conn.fetch(
        """SELECT table_name, column_name, data_type, coalesce(column_default, '')
           FROM information_schema.columns WHERE table_schema = 'public'
           UNION ALL SELECT 'index', indexname, indexdef, '' FROM pg_indexes
           WHERE schemaname = 'public' ORDER BY 1, 2"""
    )
    return [tuple(r) for r in rows]


async def test_apply_on_empty_then_again_changes_nothing(empty_dsn: str) -> None:
    conn = await asyncpg.connect(empty_dsn)
    try:
        applied = await apply_migrations(conn)
        assert applied == [m.name for m in load_migrations()]
        assert EXPECTED_TABLES <= await _tables(conn)
        before = await _schema_fingerprint(conn)
        assert await apply_migrations(conn) == []
        assert await _schema_fingerprint(conn) == before
    finally:
        await conn.close()


async def test_two_processes_migrating_at_once_both_succeed(admin_dsn: str) -> None:
    from tests.dbutil import create_database, drop_database

    dsn = await create_database(admin_dsn, "concurrent_migrate")
    try:
        env = {**os.environ, "DATABASE_URL": dsn}
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "comfygraph.server.cli",
                "migrate",
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for _ in range(2)
        ]
        results = await asyncio.gather(*(p.communicate() for p in procs))
        for proc, (_out, err) in zip(procs, results, strict=True):
            assert proc.returncode == 0, err.decode()
        conn = await asyncpg.connect(dsn)
        try:
            recorded = await conn.fetchval("SELECT count(*) FROM schema_migrations")
            assert recorded == len(load_migrations())
        finally:
            await conn.close()
    finally:
        await drop_database(admin_dsn, dsn)
