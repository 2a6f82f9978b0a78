"""websocket_connections (seed 004): who is connected to which replica, since when, and
whether the replica still vouches for them (last_heartbeat_at).

Writes come in batches from one process (server/realtime/connections.py), so each
function takes many connections at once and costs one statement.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg


@dataclass(frozen=True)
class Connected:
    connection_id: str
    user_id: uuid.UUID | None
    replica: str
    client_ip: str | None
    user_agent: str | None
    connected_at: datetime
    metadata: dict[str, Any] = field(default_factory=dict)
    #: already gone when the batch is written
    disconnected_at: datetime | None = None


async def record_connected(conn: asyncpg.Connection, rows: Sequence[Connected]) -> int:
    """Insert connections; one that is already recorded is left as it is, and one of a
    user who no longer exists is dropped (its row would be cascaded away anyway)."""
    if not rows:
        return 0
    status = await conn.execute(
        """INSERT INTO websocket_connections
               (connection_id, user_id, replica, client_ip, user_agent, connected_at,
                last_heartbeat_at, disconnected_at, metadata)
           SELECT c, u, r, ip, ua, at, coalesce(gone, at), gone, m
           FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                       $6::timestamptz[], $7::timestamptz[], $8::jsonb[])
                AS t(c, u, r, ip, ua, at, gone, m)
           -- a user deleted meanwhile (ON DELETE CASCADE) must not fail the whole batch
           WHERE u IS NULL OR EXISTS (SELECT 1 FROM users WHERE id = u)
           ON CONFLICT (connection_id) DO NOTHING""",
        [r.connection_id for r in rows],
        [r.user_id for r in rows],
        [r.replica for r in rows],
        [(r.client_ip or "")[:45] or None for r in rows],
        [r.user_agent for r in rows],
        [r.connected_at for r in rows],
        [r.disconnected_at for r in rows],
        [r.metadata for r in rows],
    )
    return int(status.split()[-1])


async def record_disconnected(
    conn: asyncpg.Connection, gone: Sequence[tuple[str, datetime]]
) -> int:
    """Stamp disconnected_at (and a last heartbeat) on connections that are still open."""
    if not gone:
        return 0
    status = await conn.execute(
        """UPDATE websocket_connections w
           SET disconnected_at = t.at, last_heartbeat_at = greatest(w.last_heartbeat_at, t.at)
           FROM unnest($1::text[], $2::timestamptz[]) AS t(c, at)
           WHERE w.connection_id = t.c AND w.disconnected_at IS NULL""",
        [c for c, _ in gone],
        [at for _, at in gone],
    )
    return int(status.split()[-1])


async def record_sessions(conn: asyncpg.Connection, pairs: Sequence[tuple[str, uuid.UUID]]) -> int:
    """Point connections at the session they follow (the first one wins)."""
    if not pairs:
        return 0
    status = await conn.execute(
        """UPDATE websocket_connections w SET session_id = t.s
           FROM unnest($1::text[], $2::uuid[]) AS t(c, s)
           WHERE w.connection_id = t.c AND w.session_id IS NULL
             AND EXISTS (SELECT 1 FROM sessions WHERE id = t.s)""",
        [c for c, _ in pairs],
        [s for _, s in pairs],
    )
    return int(status.split()[-1])


async def heartbeat(conn: asyncpg.Connection, *, replica: str) -> int:
    """Every open connection of `replica` is alive now; returns how many."""
    status = await conn.execute(
        """UPDATE websocket_connections SET last_heartbeat_at = now()
           WHERE replica = $1 AND disconnected_at IS NULL""",
        replica,
    )
    return int(status.split()[-1])


async def close_abandoned(conn: asyncpg.Connection, *, silent_for: float) -> int:
    """Connections whose replica stopped vouching for them (it died) are closed as of
    their last heartbeat."""
    status = await conn.execute(
        """UPDATE websocket_connections SET disconnected_at = last_heartbeat_at
           WHERE disconnected_at IS NULL
             AND last_heartbeat_at < now() - make_interval(secs => $1)""",
        silent_for,
    )
    return int(status.split()[-1])


async def open_connections(
    conn: asyncpg.Connection, *, replica: str | None = None
) -> list[asyncpg.Record]:
    """Open connections (of one replica, or all), oldest first."""
    return list(
        await conn.fetch(
            """SELECT * FROM websocket_connections
               WHERE disconnected_at IS NULL AND ($1::text IS NULL OR replica = $1)
               ORDER BY connected_at, id""",
            replica,
        )
    )
