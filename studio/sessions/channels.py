"""What a session's changes look like on the broadcast (channel `session:{id}`).

sessionProgress re-reads what an event names, so events carry only ids:
  {"type": "session", "id": session_id}                    status or progress changed
  {"type": "asset", "id": asset_id, "session": session_id}  an asset appeared or changed
A progress-only change is published with a coalescing key (a slow subscriber keeps
the latest); status changes and assets never coalesce. Publish after commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from comfygraph.studio.channels import Publish, session_channel

SESSION_PROGRESS = "session-progress"  # coalescing key of progress-only session events


def session_event(session_id: uuid.UUID) -> dict[str, Any]:
    return {"type": "session", "id": str(session_id)}


def asset_event(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "asset", "id": str(row["id"]), "session": str(row["session_id"])}


class SessionEvents:
    def __init__(self, publish: Publish) -> None:
        self._publish = publish

    async def session(self, session_id: uuid.UUID, *, progress_only: bool = False) -> None:
        key = SESSION_PROGRESS if progress_only else None
        await self._publish(session_channel(session_id), session_event(session_id), key)

    async def assets(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """One event per asset, latest row per id, in first-seen order."""
        latest: dict[uuid.UUID, Mapping[str, Any]] = {}
        for row in rows:
            latest[row["id"]] = row
        for row in latest.values():
            await self._publish(session_channel(row["session_id"]), asset_event(row), None)
