"""`comfygraph workflows add FILE` / `deprecate NAME`: what publishWorkflow and
deprecateWorkflow do, from a shell. The change is stored in PostgreSQL and announced on
the broadcast, so running replicas install it within a second (or at their next poll,
studio/workflows.POLL_SECONDS, where the broadcast does not reach them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from comfygraph.bus import EventBus
from comfygraph.db import workflows as db
from comfygraph.server.settings import Settings
from comfygraph.studio.workflows import CHANNEL, Problem, check


class WorkflowFileError(ValueError):
    """A file that cannot be published; the message says where and why."""


def read_template(path: Path) -> tuple[str, dict[str, Any]]:
    """(name, template) of a template file, checked as publishWorkflow checks it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WorkflowFileError(f"{path}: unreadable JSON ({exc})") from exc
    parsed = check(data)
    if isinstance(parsed, Problem):
        where = ".".join(parsed.path[1:]) or "template"
        raise WorkflowFileError(f"{path}: {where}: {parsed.message}")
    return parsed.name, data


async def announce(settings: Settings) -> None:
    async with EventBus.from_url(settings.effective_broadcast_url()) as bus:
        await bus.publish(CHANNEL, {"type": "changed"}, coalesce="changed")


async def add(conn: Any, name: str, data: dict[str, Any]) -> int:
    return await db.add_version(conn, name, data, None)


async def deprecate(conn: Any, name: str) -> bool:
    """False: no stored version and no template file of that name is known here."""
    from comfygraph.comfy.templates import load_templates

    known = {r["name"] for r in await db.all_versions(conn)}
    if name not in known and load_templates().get(name) is None:
        return False
    await db.deprecate(conn, name, None)
    return True
