"""Webhook endpoints, their deliveries and attempts (Standard Webhooks)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from comfygraph.schema.errors import UserError


@strawberry.type(description="One HTTP attempt of a delivery.")
class WebhookAttempt:
    attempted_at: datetime
    status_code: int | None
    latency_ms: int | None
    error: str | None
    response_body: str | None = strawberry.field(
        description="The receiver's answer, at most its first 1 KiB."
    )


@strawberry.type(description="One event for one endpoint; its id is the webhook-id header.")
class WebhookDelivery:
    id: strawberry.ID
    webhook_id: str = strawberry.field(description="The webhook-id header of every attempt.")
    event: str
    status: str = strawberry.field(description="pending, delivered or failed.")
    attempt_count: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    attempts: list[WebhookAttempt]


@strawberry.type
class WebhookEndpoint:
    id: strawberry.ID
    url: str
    events: list[str] = strawberry.field(
        description="job.completed, job.failed, job.cancelled, job.progress, "
        "session.completed, session.failed."
    )
    is_global: bool = strawberry.field(
        name="global", description="An admin's endpoint: every user's events."
    )
    secret: str = strawberry.field(
        description="Standard Webhooks signing secret (whsec_...): verify webhook-signature."
    )
    created_at: datetime
    disabled_at: datetime | None = strawberry.field(
        description="Set when the receiver answered 410 Gone: nothing more is sent."
    )
    disabled_reason: str | None


@strawberry.input
class CreateWebhookEndpointInput:
    url: str
    events: list[str]
    is_global: bool | None = strawberry.field(
        default=False, name="global", description="Admins only: receive every user's events."
    )


@strawberry.type
class WebhookEndpointPayload:
    endpoint: WebhookEndpoint | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class WebhookDeliveryPayload:
    delivery: WebhookDelivery | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)
