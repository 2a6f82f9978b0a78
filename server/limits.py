"""The schema's request limits, from the settings (one place for both the HTTP view and
the websocket plans)."""

from __future__ import annotations

from comfygraph.schema.limits import Limits
from comfygraph.server.settings import Settings


def limits_from(settings: Settings) -> Limits:
    return Limits(
        max_document_bytes=settings.max_document_bytes,
        max_query_cost=settings.max_query_cost,
    )
