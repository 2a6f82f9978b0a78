"""Webhook endpoints (create, delete, rotate, list), their deliveries, and redelivery.

A user manages their own endpoints; an admin also the global ones (every user's
events). Someone else's endpoint is NOT_FOUND, exactly like an unknown id. Bad input is
a userError: INVALID_URL (not https, an internal address, ...), INVALID_EVENT, FORBIDDEN
(a global endpoint by a non-admin).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import asyncpg
import strawberry

from comfygraph.db import webhooks as db
from comfygraph.db.visibility import Viewer
from comfygraph.schema.errors import (
    FORBIDDEN,
    NOT_FOUND,
    ApiError,
    UserError,
    invalid_argument,
    unauthenticated,
    user_error,
)
from comfygraph.schema.node import from_global_id, to_global_id
from comfygraph.schema.payloads import DeletePayload
from comfygraph.schema.webhooks import (
    CreateWebhookEndpointInput,
    WebhookAttempt,
    WebhookDelivery,
    WebhookDeliveryPayload,
    WebhookEndpoint,
    WebhookEndpointPayload,
)
from comfygraph.studio.webhooks import WebhookPolicy, new_secret
from comfygraph.studio.webhooks.policy import EVENTS, UnsafeUrl
from comfygraph.studio.webhooks.sender import message_id

if TYPE_CHECKING:
    from comfygraph.resolvers.context import Context

INVALID_URL = "INVALID_URL"
INVALID_EVENT = "INVALID_EVENT"
MAX_ENDPOINTS = 20
MAX_DELIVERIES = 200
ROTATION_OVERLAP_SECONDS = 24 * 3600.0
_GONE = "no webhook endpoint with this id"


def endpoint_from_row(row: asyncpg.Record) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=to_global_id("WebhookEndpoint", row["id"]),
        url=row["url"],
        events=list(row["events"]),
        is_global=row["user_id"] is None,
        secret=row["secret"],
        created_at=row["created_at"],
        disabled_at=row["disabled_at"],
        disabled_reason=row["disabled_reason"],
    )


def delivery_from_row(row: asyncpg.Record, attempts: list[asyncpg.Record]) -> WebhookDelivery:
    pending = row["status"] == "pending"
    return WebhookDelivery(
        id=to_global_id("WebhookDelivery", row["id"]),
        webhook_id=message_id(row["id"]),
        event=row["event"],
        status=row["status"],
        attempt_count=row["attempts"],
        last_status_code=row["last_status_code"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        next_attempt_at=row["next_attempt_at"] if pending else None,
        delivered_at=row["delivered_at"],
        attempts=[
            WebhookAttempt(
                attempted_at=a["attempted_at"],
                status_code=a["status_code"],
                latency_ms=a["latency_ms"],
                error=a["error"],
                response_body=a["response_body"],
            )
            for a in attempts
        ],
    )


def _viewer(ctx: Context) -> Viewer:
    if ctx.viewer.anonymous:
        raise unauthenticated()
    return ctx.viewer


def _policy(ctx: Context) -> WebhookPolicy:
    sender = ctx.services.webhooks
    return sender.policy if sender is not None else WebhookPolicy()


def _may_manage(viewer: Viewer, row: asyncpg.Record | None) -> bool:
    if row is None:
        return False
    return row["user_id"] == viewer.user_id or (row["user_id"] is None and viewer.is_admin)


def _uid(type_name: str, value: str) -> uuid.UUID:
    return from_global_id(value, expect=frozenset({type_name}))[1]


async def check_webhook_url(ctx: Context, url: str, field: list[str]) -> UserError | None:
    """A userError when `url` may not receive webhooks (form and resolved address)."""
    try:
        await _policy(ctx).check_address(url)
    except UnsafeUrl as exc:
        return user_error(INVALID_URL, str(exc), field)
    return None


async def webhook_endpoints(info: strawberry.Info[Context, None]) -> list[WebhookEndpoint]:
    """The viewer's endpoints (an admin's list includes the global ones)."""
    viewer = _viewer(info.context)
    assert viewer.user_id is not None
    async with info.context.db.acquire() as conn:
        rows = await db.list_endpoints(conn, viewer.user_id, with_global=viewer.is_admin)
    return [endpoint_from_row(r) for r in rows]


async def create_webhook_endpoint(
    info: strawberry.Info[Context, None], input: CreateWebhookEndpointInput
) -> WebhookEndpointPayload:
    viewer = _viewer(info.context)
    is_global = bool(input.is_global)
    if is_global and not viewer.is_admin:
        raise ApiError(FORBIDDEN, "only admins create global webhook endpoints")
    errors: list[UserError] = []
    bad = await check_webhook_url(info.context, input.url, ["url"])
    if bad is not None:
        errors.append(bad)
    events = list(dict.fromkeys(input.events))
    if not events:
        errors.append(user_error(INVALID_EVENT, "name at least one event", ["events"]))
    for index, event in enumerate(events):
        if event not in EVENTS:
            message = f"unknown event {event[:60]!r} (known: {', '.join(EVENTS)})"
            errors.append(user_error(INVALID_EVENT, message, ["events", str(index)]))
    if errors:
        return WebhookEndpointPayload(user_errors=errors)
    assert viewer.user_id is not None
    async with info.context.db.acquire() as conn:
        mine = await db.list_endpoints(conn, viewer.user_id, with_global=False)
        if len(mine) >= MAX_ENDPOINTS:
            raise invalid_argument("input", f"at most {MAX_ENDPOINTS} endpoints per user")
        row = await db.create_endpoint(
            conn,
            user_id=None if is_global else viewer.user_id,
            url=input.url,
            events=events,
            secret=new_secret(),
        )
    return WebhookEndpointPayload(endpoint=endpoint_from_row(row))


async def _endpoint(ctx: Context, conn: asyncpg.Connection, id: str) -> asyncpg.Record | UserError:
    viewer = _viewer(ctx)
    try:
        uid = _uid("WebhookEndpoint", id)
    except ApiError as exc:
        return user_error(exc.code, exc.message, ["id"])
    row = await db.get_endpoint(conn, uid)
    if row is None or not _may_manage(viewer, row):
        return user_error(NOT_FOUND, _GONE, ["id"])
    return row


async def delete_webhook_endpoint(
    info: strawberry.Info[Context, None], id: strawberry.ID
) -> DeletePayload:
    async with info.context.db.acquire() as conn:
        row = await _endpoint(info.context, conn, id)
        if isinstance(row, UserError):
            return DeletePayload(user_errors=[row])
        if not await db.delete_endpoint(conn, row["id"]):
            return DeletePayload(user_errors=[user_error(NOT_FOUND, _GONE, ["id"])])
    return DeletePayload(deleted_id=id)


async def rotate_webhook_secret(
    info: strawberry.Info[Context, None], id: strawberry.ID
) -> WebhookEndpointPayload:
    """A new secret; deliveries carry a signature by the old one too for 24 hours."""
    async with info.context.db.acquire() as conn:
        row = await _endpoint(info.context, conn, id)
        if isinstance(row, UserError):
            return WebhookEndpointPayload(user_errors=[row])
        rotated = await db.rotate_secret(
            conn, row["id"], new_secret(), overlap_seconds=ROTATION_OVERLAP_SECONDS
        )
    if rotated is None:
        return WebhookEndpointPayload(user_errors=[user_error(NOT_FOUND, _GONE, ["id"])])
    return WebhookEndpointPayload(endpoint=endpoint_from_row(rotated))


async def webhook_deliveries(
    info: strawberry.Info[Context, None], endpoint_id: strawberry.ID, first: int | None = 50
) -> list[WebhookDelivery]:
    """Newest first, each with its attempts (status codes, latency, errors)."""
    limit = 50 if first is None else first
    if not 0 < limit <= MAX_DELIVERIES:
        raise invalid_argument("first", f"first must be within 1..{MAX_DELIVERIES}")
    async with info.context.db.acquire() as conn:
        row = await _endpoint(info.context, conn, endpoint_id)
        if isinstance(row, UserError):
            raise ApiError(NOT_FOUND, _GONE)
        rows = await db.list_deliveries(conn, row["id"], limit=limit)
        attempts = await db.attempts_of(conn, [r["id"] for r in rows])
    return [delivery_from_row(r, attempts.get(r["id"], [])) for r in rows]


async def redeliver_webhook(
    info: strawberry.Info[Context, None], id: strawberry.ID
) -> WebhookDeliveryPayload:
    """Send a delivery again now, with the same webhook-id."""
    viewer = _viewer(info.context)
    try:
        uid = _uid("WebhookDelivery", id)
    except ApiError as exc:
        return WebhookDeliveryPayload(user_errors=[user_error(exc.code, exc.message, ["id"])])
    async with info.context.db.acquire() as conn:
        found = await db.get_delivery(conn, uid)
        owner_ok = found is not None and (
            found["user_id"] == viewer.user_id
            if found["endpoint_id"] is None
            else found["endpoint_user_id"] == viewer.user_id
            or (found["endpoint_user_id"] is None and viewer.is_admin)
        )
        if found is None or not owner_ok or found["endpoint_deleted_at"] is not None:
            message = "no webhook delivery with this id"
            return WebhookDeliveryPayload(user_errors=[user_error(NOT_FOUND, message, ["id"])])
        row = await db.redeliver(conn, uid)
        assert row is not None
        attempts = await db.attempts_of(conn, [uid])
    if info.context.services.webhooks is not None:
        info.context.services.webhooks.wake()
    return WebhookDeliveryPayload(delivery=delivery_from_row(row, attempts.get(uid, [])))
