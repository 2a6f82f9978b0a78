"""The webhook sender from settings, hooked to this replica's job runner."""

from __future__ import annotations

from typing import Any

import asyncpg

from comfygraph.server.settings import Settings
from comfygraph.studio.runner import JobRunner
from comfygraph.studio.webhooks import WebhookPolicy, WebhookSender
from comfygraph.studio.webhooks.sender import SenderConfig


def webhook_sender(settings: Settings, pool: asyncpg.Pool, runner: JobRunner) -> WebhookSender:
    sender = WebhookSender(
        pool,
        WebhookPolicy(
            allow_private=settings.webhook_allow_private,
            http_hosts=frozenset(settings.webhook_allow_http_hosts),
        ),
        SenderConfig(
            retry_hours=settings.webhook_retry_hours,
            backoff_initial=settings.webhook_backoff_initial,
            timeout=settings.webhook_timeout,
            poll_interval=settings.webhook_poll_interval,
            concurrency=settings.webhook_concurrency,
            progress_seconds=settings.webhook_progress_seconds,
        ),
    )

    async def ended(kind: Any, row: asyncpg.Record) -> None:
        sender.wake()  # the trigger wrote its deliveries in the job's transaction

    runner.listeners.append(ended)
    runner.progress_listeners.append(sender.on_progress)
    return sender
