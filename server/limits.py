"""The schema's request limits, from the settings (one place for both the HTTP view and
the websocket plans)."""

from __future__ import annotations

from comfygraph.schema.limits import Limits
from comfygraph.server.settings import Settings
from comfygraph.studio.ratelimit import Quotas, RateLimits


def limits_from(settings: Settings) -> Limits:
    return Limits(
        max_document_bytes=settings.max_document_bytes,
        max_query_cost=settings.max_query_cost,
    )


def rate_limits_from(settings: Settings) -> RateLimits:
    """Counters in Redis when the broadcast is Redis, in memory for a memory broadcast
    (one process), else in PostgreSQL: wherever every replica already meets."""
    quotas = Quotas(
        submissions_per_minute=settings.rate_submissions_per_minute,
        active_jobs=settings.rate_active_jobs,
        uploads_per_minute=settings.rate_uploads_per_minute,
        upload_bytes_per_day=settings.rate_upload_bytes_per_day,
        logins_per_minute_per_address=settings.rate_logins_per_minute_per_address,
        logins_per_minute_per_email=settings.rate_logins_per_minute_per_email,
        anonymous_per_second=settings.rate_anonymous_per_second,
        admins_exempt=settings.rate_admins_exempt,
    )
    return RateLimits(quotas, settings.effective_broadcast_url())
