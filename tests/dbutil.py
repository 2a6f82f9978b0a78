"""Fresh PostgreSQL databases for tests: DATABASE_URL when set, else embedded.

Code under test commits (NOTIFY, SKIP LOCKED across connections), so each test module
gets a database of its own instead of a rolled-back transaction (STYLE.md, Traps).
"""

from __future__ import annotations

import re
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg


def with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


def database_name(prefix: str) -> str:
    safe = re.sub(r"[^a-z0-9_]", "_", prefix.lower())[:40]
    return f"cgt_{safe}_{uuid.uuid4().hex[:8]}"


async def create_database(admin_dsn: str, prefix: str) -> str:
    name = database_name(prefix)
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(admin_dsn, name)


async def drop_database(admin_dsn: str, dsn: str) -> None:
    name = urlsplit(dsn).path.lstrip("/")
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
