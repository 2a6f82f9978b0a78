"""The application's asyncpg pool: created by the app's lifespan, never at import time."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson


def _encode_json(value: Any) -> str:
    return orjson.dumps(value).decode()


async def init_connection(conn: asyncpg.Connection) -> None:
    """Give every connection JSON/JSONB codecs so jsonb columns read as Python objects."""
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(
            typename, schema="pg_catalog", encoder=_encode_json, decoder=orjson.loads
        )


async def create_pool(
    dsn: str,
    *,
    min_size: int = 2,
    max_size: int = 10,
    command_timeout: float = 30.0,
    connect_timeout: float = 10.0,
) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        command_timeout=command_timeout,
        timeout=connect_timeout,
        init=init_connection,
    )
    assert pool is not None
    return pool


async def connect(dsn: str, *, connect_timeout: float = 10.0) -> asyncpg.Connection:
    """One connection with the same codecs as the pool (CLI commands, migrations, tests)."""
    conn = await asyncpg.connect(dsn, timeout=connect_timeout)
    await init_connection(conn)
    return conn
