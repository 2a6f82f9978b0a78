"""SQL of runtime-published workflow templates: versions and deprecations."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg


async def add_version(
    conn: asyncpg.Connection, name: str, template: dict[str, Any], user_id: uuid.UUID | None
) -> int:
    """Store `template` as `name`'s next version (at least 1) and lift any deprecation;
    returns the version. Concurrent publishes of one name are serialized by a lock."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('workflow:' || $1))", name)
        version: int = await conn.fetchval(
            """INSERT INTO workflow_versions (name, version, template, created_by)
               SELECT $1, coalesce(max(version), 0) + 1, $2, $3
               FROM workflow_versions WHERE name = $1
               RETURNING version""",
            name, template, user_id,
        )  # fmt: skip
        await conn.execute("DELETE FROM workflow_deprecations WHERE name = $1", name)
    return version


async def deprecate(conn: asyncpg.Connection, name: str, user_id: uuid.UUID | None) -> None:
    await conn.execute(
        """INSERT INTO workflow_deprecations (name, deprecated_by) VALUES ($1, $2)
           ON CONFLICT (name) DO NOTHING""",
        name, user_id,
    )  # fmt: skip


async def all_versions(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT name, version, template FROM workflow_versions ORDER BY name, version"
    )


async def deprecated_names(conn: asyncpg.Connection) -> set[str]:
    return {r["name"] for r in await conn.fetch("SELECT name FROM workflow_deprecations")}
