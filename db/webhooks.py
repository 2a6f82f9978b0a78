"""Webhook endpoints, the delivery outbox and its attempt log (migration 0060).

Deliveries of status changes are inserted by triggers in the transaction of the change;
progress deliveries by `enqueue_progress` (throttled per job and endpoint). A sender
claims due deliveries with FOR UPDATE SKIP LOCKED and a short hold (`locked_until`), so
any replica sends and a replica that dies mid-delivery only delays it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

RESPONSE_BODY_LIMIT = 1024  # bytes of a receiver's answer kept in webhook_attempts


async def create_endpoint(
    conn: asyncpg.Connection,
    *,
    user_id: uuid.UUID | None,
    url: str,
    events: Sequence[str],
    secret: str,
) -> asyncpg.Record:
    row = await conn.fetchrow(
        """INSERT INTO webhook_endpoints (user_id, url, events, secret)
           VALUES ($1, $2, $3, $4) RETURNING *""",
        user_id, url, list(events), secret,
    )  # fmt: skip
    assert row is not None
    return row


async def get_endpoint(conn: asyncpg.Connection, endpoint_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM webhook_endpoints WHERE id = $1 AND deleted_at IS NULL", endpoint_id
    )


async def list_endpoints(
    conn: asyncpg.Connection, user_id: uuid.UUID, *, with_global: bool
) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            """SELECT * FROM webhook_endpoints
                WHERE deleted_at IS NULL AND (user_id = $1 OR ($2 AND user_id IS NULL))
                ORDER BY created_at, id""",
            user_id,
            with_global,
        )
    )


async def delete_endpoint(conn: asyncpg.Connection, endpoint_id: uuid.UUID) -> bool:
    """Soft delete; its pending deliveries end as failed (nobody wants them any more)."""
    async with conn.transaction():
        done = await conn.fetchval(
            """UPDATE webhook_endpoints SET deleted_at = now()
                WHERE id = $1 AND deleted_at IS NULL RETURNING id""",
            endpoint_id,
        )
        if done is None:
            return False
        await conn.execute(
            """UPDATE webhook_deliveries SET status = 'failed', last_error = 'endpoint deleted'
                WHERE endpoint_id = $1 AND status = 'pending'""",
            endpoint_id,
        )
    return True


async def rotate_secret(
    conn: asyncpg.Connection, endpoint_id: uuid.UUID, secret: str, *, overlap_seconds: float
) -> asyncpg.Record | None:
    """A new secret; the old one keeps signing alongside for `overlap_seconds`."""
    return await conn.fetchrow(
        """UPDATE webhook_endpoints
              SET previous_secret = secret, secret = $2,
                  previous_expires_at = now() + make_interval(secs => $3)
            WHERE id = $1 AND deleted_at IS NULL RETURNING *""",
        endpoint_id,
        secret,
        overlap_seconds,
    )


async def disable_endpoint(conn: asyncpg.Connection, endpoint_id: uuid.UUID, reason: str) -> None:
    async with conn.transaction():
        await conn.execute(
            """UPDATE webhook_endpoints SET disabled_at = now(), disabled_reason = $2
                WHERE id = $1 AND disabled_at IS NULL""",
            endpoint_id,
            reason,
        )
        await conn.execute(
            """UPDATE webhook_deliveries SET status = 'failed', last_error = $2
                WHERE endpoint_id = $1 AND status = 'pending'""",
            endpoint_id,
            f"endpoint disabled: {reason}",
        )


async def user_secret(conn: asyncpg.Connection, user_id: uuid.UUID, fresh: str) -> str:
    """The user's one-off webhook secret, set to `fresh` the first time it is needed."""
    value: str = await conn.fetchval(
        """UPDATE users SET webhook_secret = coalesce(webhook_secret, $2)
            WHERE id = $1 RETURNING webhook_secret""",
        user_id,
        fresh,
    )
    return value


async def get_user_secret(conn: asyncpg.Connection, user_id: uuid.UUID) -> str | None:
    value: str | None = await conn.fetchval(
        "SELECT webhook_secret FROM users WHERE id = $1", user_id
    )
    return value


async def enqueue_progress(
    conn: asyncpg.Connection,
    *,
    subject_type: str,
    job_id: uuid.UUID,
    user_id: uuid.UUID | None,
    one_off_url: str | None,
    progress: float,
    min_interval: float,
) -> int:
    """job.progress deliveries, at most one per `min_interval` per job and target URL."""
    n: int = await conn.fetchval(
        """WITH targets AS (
               SELECT e.id AS endpoint_id, e.url FROM webhook_endpoints e
                WHERE e.deleted_at IS NULL AND e.disabled_at IS NULL
                  AND 'job.progress' = ANY (e.events)
                  AND (e.user_id IS NULL OR e.user_id = $3)
               UNION ALL
               SELECT NULL, $4 WHERE $4::text IS NOT NULL
           ), fresh AS (
               INSERT INTO webhook_deliveries
                      (endpoint_id, user_id, url, event, subject_type, subject_id, data)
               SELECT t.endpoint_id, $3, t.url, 'job.progress', $1, $2,
                      jsonb_build_object('status', 'processing', 'progress', $5::float8)
                 FROM targets t
                WHERE NOT EXISTS (
                      SELECT 1 FROM webhook_deliveries d
                       WHERE d.subject_id = $2 AND d.event = 'job.progress'
                         AND d.url = t.url
                         AND d.endpoint_id IS NOT DISTINCT FROM t.endpoint_id
                         AND d.created_at > now() - make_interval(secs => $6))
               RETURNING 1)
           SELECT count(*) FROM fresh""",
        subject_type, job_id, user_id, one_off_url, progress, min_interval,
    )  # fmt: skip
    return n


async def claim_due(
    conn: asyncpg.Connection, *, limit: int, hold_seconds: float
) -> list[asyncpg.Record]:
    """Due deliveries no other sender holds, with what signing them needs."""
    return list(
        await conn.fetch(
            """WITH due AS (
                   SELECT id FROM webhook_deliveries
                    WHERE status = 'pending' AND next_attempt_at <= now()
                      AND (locked_until IS NULL OR locked_until < now())
                    ORDER BY next_attempt_at
                    LIMIT $1 FOR UPDATE SKIP LOCKED)
               UPDATE webhook_deliveries d
                  SET locked_until = now() + make_interval(secs => $2),
                      attempts = d.attempts + 1
                 FROM due WHERE d.id = due.id
               RETURNING d.*,
                   (SELECT e.secret FROM webhook_endpoints e WHERE e.id = d.endpoint_id)
                       AS endpoint_secret,
                   (SELECT e.previous_secret FROM webhook_endpoints e
                     WHERE e.id = d.endpoint_id AND e.previous_expires_at > now())
                       AS previous_secret,
                   (SELECT u.webhook_secret FROM users u WHERE u.id = d.user_id)
                       AS user_secret""",
            limit,
            hold_seconds,
        )
    )


async def record_attempt(
    conn: asyncpg.Connection,
    delivery_id: uuid.UUID,
    *,
    status_code: int | None,
    latency_ms: int,
    error: str | None,
    body: bytes,
    outcome: str,
    retry_at: datetime | None,
) -> None:
    """Log one attempt and move the delivery: 'delivered', 'failed', or pending again
    at `retry_at`."""
    text = body[:RESPONSE_BODY_LIMIT].decode("utf-8", "replace")
    while len(text.encode()) > RESPONSE_BODY_LIMIT:  # replacement chars can grow it
        text = text[:-1]
    async with conn.transaction():
        await conn.execute(
            """INSERT INTO webhook_attempts
                      (delivery_id, status_code, latency_ms, error, response_body)
               VALUES ($1, $2, $3, $4, $5)""",
            delivery_id, status_code, latency_ms, error, text,
        )  # fmt: skip
        await conn.execute(
            """UPDATE webhook_deliveries
                  SET status = $2, last_status_code = $3, last_error = $4,
                      locked_until = NULL,
                      next_attempt_at = coalesce($5, next_attempt_at),
                      delivered_at = CASE WHEN $2 = 'delivered' THEN now() END
                WHERE id = $1""",
            delivery_id, outcome, status_code, error, retry_at,
        )  # fmt: skip


async def list_deliveries(
    conn: asyncpg.Connection, endpoint_id: uuid.UUID, *, limit: int
) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            """SELECT * FROM webhook_deliveries WHERE endpoint_id = $1
                ORDER BY created_at DESC, id DESC LIMIT $2""",
            endpoint_id,
            limit,
        )
    )


async def attempts_of(
    conn: asyncpg.Connection, delivery_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[asyncpg.Record]]:
    rows = await conn.fetch(
        """SELECT * FROM webhook_attempts WHERE delivery_id = ANY($1::uuid[])
            ORDER BY attempted_at, id""",
        list(delivery_ids),
    )
    out: dict[uuid.UUID, list[asyncpg.Record]] = {}
    for row in rows:
        out.setdefault(row["delivery_id"], []).append(row)
    return out


async def get_delivery(conn: asyncpg.Connection, delivery_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT d.*, e.user_id AS endpoint_user_id, e.deleted_at AS endpoint_deleted_at
             FROM webhook_deliveries d
             LEFT JOIN webhook_endpoints e ON e.id = d.endpoint_id WHERE d.id = $1""",
        delivery_id,
    )


async def redeliver(conn: asyncpg.Connection, delivery_id: uuid.UUID) -> asyncpg.Record | None:
    """Send it again now (same webhook-id), whatever became of it."""
    return await conn.fetchrow(
        """UPDATE webhook_deliveries
              SET status = 'pending', next_attempt_at = now(), locked_until = NULL,
                  retry_since = now(), delivered_at = NULL
            WHERE id = $1 RETURNING *""",
        delivery_id,
    )


def subject_row_query(subject_type: str) -> str:
    table = "sessions" if subject_type == "session" else f"{subject_type}_jobs"
    return f"SELECT * FROM {table} WHERE id = $1"


async def subject_row(
    conn: asyncpg.Connection, subject_type: str, subject_id: uuid.UUID
) -> dict[str, Any] | None:
    row = await conn.fetchrow(subject_row_query(subject_type), subject_id)
    if row is None:
        return None
    out = dict(row)
    if subject_type == "session" and row["final_video_id"] is not None:
        out["final_video_url"] = await conn.fetchval(
            "SELECT url FROM assets WHERE id = $1", row["final_video_id"]
        )
    return out
