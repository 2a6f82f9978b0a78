"""What a job's changes look like on the broadcast, composed in one place.

Channels (docs/architecture.md): `job:{id}`, `session:{id}`, `feed:user:{owner}`,
`feed:public`. A status change goes to all that apply; a progress tick only to
`job:{id}`, with a coalescing key so a slow subscriber keeps just the latest tick.
Payloads are small JSON and carry what subscribers need, so a tick causes no
database read per subscriber. Publish only after the transaction that made the
change has committed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

Publish = Callable[[str, dict[str, Any], str | None], Awaitable[None]]
PROGRESS = "progress"  # the coalescing key of progress ticks
#: an event's "type" meaning "events of this channel were lost: re-read the state"
RESYNC_EVENT = "resync"


def job_channel(job_id: object) -> str:
    return f"job:{job_id}"


def session_channel(session_id: object) -> str:
    return f"session:{session_id}"


def user_feed_channel(user_id: object) -> str:
    return f"feed:user:{user_id}"


PUBLIC_FEED = "feed:public"
ALL_FEED = "feed:all"  # every job's status changes: admins' jobUpdates


def status_event(kind: str, row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": "status",
        "id": str(row["id"]),
        "kind": kind,
        "status": row["status"],
        "progress": float(row["progress"]),
        "owner": str(row["user_id"]) if row["user_id"] else None,
        "public": bool(row["public"]),
        "workflow": row["workflow_name"],
        "session": str(row["session_id"]) if row["session_id"] else None,
        "deleted": row["deleted_at"] is not None,
    }


class JobEvents:
    """Publishes job changes; `publish` is the realtime bus's (channel, event, coalesce)."""

    def __init__(self, publish: Publish) -> None:
        self._publish = publish

    async def status(self, kind: str, row: Mapping[str, Any], *, was_public: bool = False) -> None:
        """`was_public`: the job may have just left the public feed, whose subscribers
        must hear of it although the row is no longer public."""
        event = status_event(kind, row)
        channels = [job_channel(row["id"])]
        if row["user_id"]:
            channels.append(user_feed_channel(row["user_id"]))
        if row["public"] or was_public:
            channels.append(PUBLIC_FEED)
        channels.append(ALL_FEED)
        if row["session_id"]:
            channels.append(session_channel(row["session_id"]))
        many = getattr(self._publish, "publish_many", None)
        if many is not None:  # one round trip to the broker, not one per channel
            await many(channels, event)
            return
        for channel in channels:
            await self._publish(channel, event, None)

    async def progress(
        self,
        kind: str,
        job_id: object,
        *,
        progress: float,
        node: str | None = None,
        class_type: str | None = None,
        value: float | None = None,
        maximum: float | None = None,
        eta_seconds: float | None = None,
        preview_url: str | None = None,
        session_id: object = None,
    ) -> None:
        event = {
            "type": "progress",
            "id": str(job_id),
            "kind": kind,
            "status": "processing",
            "progress": progress,
            "node": node,
            "classType": class_type,
            "value": value,
            "max": maximum,
            "eta": eta_seconds,
            "previewUrl": preview_url,
        }
        await self._publish(job_channel(job_id), event, PROGRESS)
        if session_id:
            await self._publish(session_channel(session_id), event, f"{PROGRESS}:{job_id}")


async def discard(channel: str, event: dict[str, Any], coalesce: str | None) -> None:
    """A publish that goes nowhere (tools and tests without a bus)."""
