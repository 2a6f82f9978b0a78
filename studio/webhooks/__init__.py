"""Signed webhooks (Standard Webhooks): URL policy, payloads, and the outbox sender."""

from comfygraph.studio.webhooks.policy import WebhookPolicy, new_secret
from comfygraph.studio.webhooks.sender import WebhookSender

__all__ = ["WebhookPolicy", "WebhookSender", "new_secret"]
