"""Workflow templates managed at runtime: publish a new version, deprecate a name, and
keep every replica's TemplateSet current.

A publish stores the version in PostgreSQL, installs it on this replica at once, and
sends `{"type": "changed"}` on the `workflows` channel; every replica's `follow` loop
then re-reads the versions (one small query), so all of them see it well within a
second. The loop also re-reads after a broker reconnect and every POLL_SECONDS, which
covers a publish made where the broadcast does not reach (a CLI on in-memory broadcast).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import uuid
from dataclasses import dataclass, replace
from typing import Any

import asyncpg

from comfygraph.bus import EventBus
from comfygraph.comfy.templates import TemplateError, TemplateSet, WorkflowTemplate, parse_template
from comfygraph.db import workflows as db
from comfygraph.studio.channels import Publish

log = logging.getLogger(__name__)

CHANNEL = "workflows"
POLL_SECONDS = 30.0
INVALID_TEMPLATE = "INVALID_TEMPLATE"
UNKNOWN_WORKFLOW = "UNKNOWN_WORKFLOW"


@dataclass(frozen=True)
class Problem:
    code: str
    message: str
    path: tuple[str, ...]


def check(data: Any) -> WorkflowTemplate | Problem:
    """The template parsed by the same parser as template files, or its problem (with
    the path inside the template, under "template")."""
    try:
        return parse_template(copy.deepcopy(data), source="published template")
    except TemplateError as exc:
        return Problem(INVALID_TEMPLATE, exc.reason, ("template", *exc.path))


async def reload(pool: asyncpg.Pool, templates: TemplateSet) -> None:
    """Install every stored version and deprecation into `templates` (in place)."""
    async with pool.acquire() as conn:
        rows = await db.all_versions(conn)
        deprecated = await db.deprecated_names(conn)
    published = []
    for row in rows:
        try:
            parsed = parse_template(row["template"], source=f"{row['name']} v{row['version']}")
        except TemplateError as exc:  # stored valid; a stricter parser since may refuse it
            log.warning("skipping stored workflow version: %s", exc)
            continue
        published.append(replace(parsed, version=row["version"]))
    templates.install(published, deprecated)


async def publish_workflow(
    pool: asyncpg.Pool,
    templates: TemplateSet,
    publish: Publish,
    data: Any,
    user_id: uuid.UUID | None,
) -> WorkflowTemplate | Problem:
    parsed = check(data)
    if isinstance(parsed, Problem):
        return parsed
    async with pool.acquire() as conn:
        version = await db.add_version(conn, parsed.name, data, user_id)
    await _changed(pool, templates, publish)
    return templates.get(parsed.name, version) or replace(parsed, version=version)


async def deprecate_workflow(
    pool: asyncpg.Pool,
    templates: TemplateSet,
    publish: Publish,
    name: str,
    user_id: uuid.UUID | None,
) -> WorkflowTemplate | Problem:
    template = templates.get(name)
    if template is None:
        return Problem(UNKNOWN_WORKFLOW, f"no workflow named {name!r}", ("name",))
    async with pool.acquire() as conn:
        await db.deprecate(conn, name, user_id)
    await _changed(pool, templates, publish)
    return template


async def _changed(pool: asyncpg.Pool, templates: TemplateSet, publish: Publish) -> None:
    await reload(pool, templates)
    try:
        await publish(CHANNEL, {"type": "changed"}, "changed")
    except Exception:  # stored and installed here; the others poll within POLL_SECONDS
        log.warning("could not broadcast a workflow change", exc_info=True)


async def follow(pool: asyncpg.Pool, templates: TemplateSet, bus: EventBus) -> None:
    """Keep `templates` current (a supervised loop on every replica)."""
    async with bus.subscribe(CHANNEL) as sub:
        while True:
            await reload(pool, templates)  # after subscribing: nothing is missed
            try:
                await asyncio.wait_for(sub.get(), POLL_SECONDS)
            except TimeoutError:
                pass
