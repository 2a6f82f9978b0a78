"""Turning a request into a PENDING job: the one path submitJob, retryJob and the
session pipeline share. Everything is validated before anything is stored; each bad
field is reported on its own, with a stable code and the path to the field."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from comfygraph.comfy.templates import SEED_MAX, TemplateSet, WorkflowTemplate, validate
from comfygraph.db.errors import IdempotencyConflict
from comfygraph.db.jobs import create_job
from comfygraph.db.kinds import COLUMNS_OF, OutputType
from comfygraph.db.sessions import get_session
from comfygraph.db.visibility import Viewer, can_change_session
from comfygraph.studio.channels import JobEvents

MAX_PRIORITY = 100
MAX_KEY_LENGTH = 200
FILE_COLUMNS = {
    "IMAGE": "input_image_urls",
    "AUDIO": "input_audio_urls",
    "VIDEO": "input_video_urls",
}


@dataclass(frozen=True)
class Problem:
    code: str
    message: str
    path: tuple[str, ...]


@dataclass(frozen=True)
class JobRequest:
    workflow_name: str
    parameters: Any
    public: bool = False
    idempotency_key: str | None = None
    session_id: uuid.UUID | None = None
    priority: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)  # more columns (pipeline use)
    count: int = 1  # > 1: a batch of jobs with distinct seeds and one batch_id
    template_version: int | None = None  # retryJob: the version the job ran; None: current


@dataclass(frozen=True)
class Submitted:
    kind: OutputType
    row: asyncpg.Record
    created: bool  # False: an earlier submit with the same idempotency key
    rows: tuple[asyncpg.Record, ...] = ()  # every job of a batch (row is the first)


#: problems listed one by one in a refusal; the rest are counted in one more
MAX_PROBLEMS = 20


def capped(problems: list[Problem]) -> list[Problem]:
    if len(problems) <= MAX_PROBLEMS:
        return problems
    more = len(problems) - MAX_PROBLEMS
    return [
        *problems[:MAX_PROBLEMS],
        Problem(
            "TOO_MANY_ERRORS",
            f"{more} more problems not listed ({len(problems)} in all)",
            ("input",),
        ),
    ]


def _columns(kind: OutputType, template: WorkflowTemplate, clean: Mapping[str, Any]) -> dict:
    """Type-specific columns filled from the parameters (input URLs, prompt, size)."""
    allowed = COLUMNS_OF[kind]
    columns: dict[str, Any] = {}
    for parameter in template.parameters:
        value = clean.get(parameter.name)
        column = FILE_COLUMNS.get(parameter.type)
        if column and column in allowed and value is not None:
            urls = value if isinstance(value, list) else [value]
            columns[column] = [*columns.get(column, []), *urls]
    for name in ("prompt", "width", "height", "fps"):
        if name in allowed and isinstance(clean.get(name), str | int) and name not in columns:
            columns[name] = clean[name]
    return columns


def _retention(template: WorkflowTemplate) -> dict[str, int]:
    """The template's own retention, kept on the job (the sweeper reads RETENTION_DAYS
    for jobs without one)."""
    return {} if template.retention_days is None else {"retention_days": template.retention_days}


async def submit(
    pool: asyncpg.Pool,
    templates: TemplateSet,
    viewer: Viewer,
    request: JobRequest,
    *,
    events: JobEvents,
    is_allowed_file: Callable[[str], bool],
    wake: Callable[[], None] | None = None,
    user_ip: str | None = None,
    max_count: int = 100,
) -> Submitted | list[Problem]:
    assert viewer.user_id is not None, "callers check that the viewer is signed in"
    template = templates.get(request.workflow_name, request.template_version)
    if template is None or template.name in templates.deprecated:
        known = ", ".join(sorted(set(templates.templates) - templates.deprecated)) or "none"
        return [
            Problem(
                "UNKNOWN_WORKFLOW",
                f"no workflow named {request.workflow_name!r} (known: {known})",
                ("workflowName",),
            )
        ]
    problems: list[Problem] = []
    if not isinstance(request.parameters, dict):
        problems.append(
            Problem("INVALID_PARAMETER", "parameters must be an object", ("parameters",))
        )
        clean: dict[str, Any] = {}
    else:
        clean, errors = validate(template, request.parameters, is_allowed_file=is_allowed_file)
        problems += [Problem(e.code, e.message, e.path) for e in errors]
    if not -MAX_PRIORITY <= request.priority <= MAX_PRIORITY:
        problems.append(
            Problem(
                "INVALID_PRIORITY",
                f"priority must be within -{MAX_PRIORITY}..{MAX_PRIORITY}",
                ("priority",),
            )
        )
    if not 1 <= request.count <= max_count:
        problems.append(
            Problem("INVALID_COUNT", f"count must be within 1..{max_count}", ("count",))
        )
    key = request.idempotency_key
    if key is not None and not 0 < len(key) <= MAX_KEY_LENGTH:
        problems.append(
            Problem(
                "INVALID_IDEMPOTENCY_KEY",
                f"idempotencyKey must have 1 to {MAX_KEY_LENGTH} characters",
                ("idempotencyKey",),
            )
        )
    async with pool.acquire() as conn:
        if request.session_id is not None:
            session = await get_session(conn, request.session_id)
            if session is None or not can_change_session(viewer, session):
                problems.append(Problem("SESSION_NOT_FOUND", "no such session", ("sessionId",)))
        if problems:
            return capped(problems)
        kind = OutputType(template.output_type.lower())
        raw = {
            "workflow_name": template.name,
            "parameters": request.parameters,
            "public": request.public,
            "session_id": str(request.session_id or ""),
            "priority": request.priority,
        }
        if request.count > 1:
            raw["count"] = request.count
        batch = uuid.uuid4() if request.count > 1 else None
        rows: list[asyncpg.Record] = []
        created = False
        try:
            # A batch is stored whole or not at all; one job is one statement (with a
            # key, create_job's own transaction), not BEGIN/SAVEPOINT/.../COMMIT.
            whole = conn.transaction() if request.count > 1 else contextlib.nullcontext()
            async with whole:
                for index, values in enumerate(seeded(template, clean, request.count)):
                    row, created = await create_job(
                        conn,
                        kind,
                        user_id=viewer.user_id,
                        workflow_name=template.name,
                        template_version=template.version,
                        parameters=values,
                        idempotency_key=key if key is None or index == 0 else f"{key}#{index}",
                        request=raw,
                        public=request.public,
                        session_id=request.session_id,
                        priority=request.priority,
                        user_ip=user_ip,
                        **({"batch_id": batch} if batch else {}),
                        **_columns(kind, template, values),
                        **request.extra,
                        **_retention(template),
                    )
                    rows.append(row)
        except IdempotencyConflict:
            return [
                Problem(
                    "IDEMPOTENCY_KEY_REUSED",
                    "this idempotencyKey was used before with a different request",
                    ("idempotencyKey",),
                )
            ]
    if created:
        for each in rows:
            await events.status(kind.value, each)
        if wake is not None:
            wake()
    return Submitted(kind, rows[0], created, tuple(rows))


def seeded(
    template: WorkflowTemplate, clean: Mapping[str, Any], count: int
) -> list[dict[str, Any]]:
    """`count` copies of the values, each SEED parameter distinct: its seed s (given, or
    the random one validation chose) gives s, s+1, ... wrapping at the parameter's max."""
    seeds = [p for p in template.parameters if p.type == "SEED" and p.name in clean]
    copies = [dict(clean) for _ in range(count)]
    for parameter in seeds:
        low = int(parameter.min or 0)
        high = int(parameter.max if parameter.max is not None else SEED_MAX)
        span = high - low + 1
        first = int(clean[parameter.name])
        for index, values in enumerate(copies):
            values[parameter.name] = low + (first - low + index) % span
    return copies
