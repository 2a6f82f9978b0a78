"""The allow-list of persisted documents (`comfygraph persist`, PERSISTED_QUERIES_ONLY)."""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg


async def register_queries(conn: asyncpg.Connection, documents: Mapping[str, str]) -> int:
    """Store sha256 -> text; returns how many were new (a known hash is kept as is)."""
    if not documents:
        return 0
    rows = await conn.fetch(
        """INSERT INTO persisted_queries (sha256, query)
           SELECT * FROM unnest($1::text[], $2::text[])
           ON CONFLICT (sha256) DO NOTHING RETURNING sha256""",
        list(documents),
        list(documents.values()),
    )
    return len(rows)


async def persisted_query(conn: asyncpg.Pool | asyncpg.Connection, sha256: str) -> str | None:
    text: str | None = await conn.fetchval(
        "SELECT query FROM persisted_queries WHERE sha256 = $1", sha256
    )
    return text
