"""Resolve which PostgreSQL to use and check that it answers, with one-line errors."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import asyncpg

from comfygraph.db.embedded import start_embedded
from comfygraph.db.pool import connect
from comfygraph.server.settings import Settings


class DatabaseUnavailable(Exception):
    pass


def describe(dsn: str) -> str:
    """host:port (or the socket folder) of a DSN, for messages; never the password."""
    parts = urlsplit(dsn)
    host = parts.hostname or ""
    if not host and "host=" in parts.query:
        host = parts.query.split("host=", 1)[1].split("&", 1)[0]
    return f"{host or 'localhost'}:{parts.port or 5432}"


def resolve_dsn(settings: Settings) -> str:
    """DATABASE_URL, or the embedded server in the data dir (started or joined)."""
    if settings.database_url:
        return settings.database_url
    return start_embedded(settings.data_dir)


async def check_reachable(dsn: str, *, connect_timeout: float) -> None:
    try:
        async with asyncio.timeout(connect_timeout + 1):
            conn = await connect(dsn, connect_timeout=connect_timeout)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DatabaseUnavailable(f"cannot reach PostgreSQL at {describe(dsn)}: {reason}") from exc
    await conn.close()
