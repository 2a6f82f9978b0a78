"""INSERT/UPDATE of whitelisted columns, shared by the repositories.

Column names come from code, never from clients, but they are still checked against
each table's writable set so a typo fails loudly instead of writing SQL by accident.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import asyncpg


def check_writable(table: str, allowed: frozenset[str], columns: Iterable[str]) -> None:
    unknown = set(columns) - allowed
    if unknown:
        raise ValueError(f"{table} has no writable column(s) {sorted(unknown)}")


async def insert_row(
    conn: asyncpg.Connection, table: str, values: Mapping[str, Any]
) -> asyncpg.Record:
    names = list(values)
    placeholders = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    row = await conn.fetchrow(
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({placeholders}) RETURNING *",
        *values.values(),
    )
    assert row is not None
    return row


async def update_row(
    conn: asyncpg.Connection, table: str, row_id: uuid.UUID, values: Mapping[str, Any]
) -> asyncpg.Record | None:
    """Set `values` on the row with this id; None when there is no such row."""
    sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(values, start=2))
    return await conn.fetchrow(
        f"UPDATE {table} SET {sets} WHERE id = $1 RETURNING *", row_id, *values.values()
    )
