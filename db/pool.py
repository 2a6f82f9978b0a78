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


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release without a round trip. asyncpg still rolls back an open transaction and
    drops listeners first; the rest of its reset (`pg_advisory_unlock_all(); CLOSE ALL;
    UNLISTEN *; RESET ALL`) undoes session state that pooled connections never take:
    no LISTEN (the postgres bus has its own pool), no session SET (only SET LOCAL), no
    cursor outside a transaction, and the one advisory lock (migrations) is unlocked
    in a finally."""


async def create_pool(
    dsn: str,
    *,
    min_size: int = 2,
    max_size: int = 10,
    command_timeout: float = 30.0,
    connect_timeout: float = 10.0,
    full_reset: bool = False,
) -> asyncpg.Pool:
    """`full_reset`: asyncpg's reset statement on every release (one more round trip)."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        command_timeout=command_timeout,
        timeout=connect_timeout,
        init=init_connection,
        reset=None if full_reset else _keep_session,
    )
    assert pool is not None
    return pool


async def connect(dsn: str, *, connect_timeout: float = 10.0) -> asyncpg.Connection:
    """One connection with the same codecs as the pool (CLI commands, migrations, tests)."""
    conn = await asyncpg.connect(dsn, timeout=connect_timeout)
    await init_connection(conn)
    return conn
