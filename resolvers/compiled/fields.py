"""What the compiler knows of each object type: for each GraphQL field, the columns
it reads and a getter turning a row into the field's JSON value. The values are the
ones the interpreted path serializes (resolvers/mapping.py, then the GraphQL scalars):
enums by name, Float as float, DateTime as isoformat, lists never null."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from comfygraph.db.kinds import OutputType as Kind
from comfygraph.db.visibility import ANONYMOUS, Viewer, can_see_user
from comfygraph.domain.statuses import JobStatus
from comfygraph.resolvers.mapping import JOB_TYPE_NAMES
from comfygraph.schema.enums import Role
from comfygraph.schema.jobs import JobOutput
from comfygraph.schema.node import to_global_id

Row = Mapping[str, Any]


class Env:
    """One request's run of a plan: the request's context and connection (set by the
    step that holds it), its variables, and what loads fetched for nested fields."""

    __slots__ = ("conn", "ctx", "queue", "secrets", "sign", "slots", "storage", "users",
                 "variables", "viewer")  # fmt: skip

    def __init__(
        self,
        viewer: Viewer = ANONYMOUS,
        sign: Callable[[Row, Any], Any] | None = None,
        ctx: Any = None,
        variables: Any = None,
    ) -> None:
        self.viewer = viewer  # whose emails may be shown (schema/users.py's rule)
        #: a job row's file URLs signed for the viewer, as schema/files.py signs them
        self.sign = sign or (lambda row, value: value)
        self.ctx = ctx
        self.variables = variables
        self.conn: Any = None
        self.users: dict[uuid.UUID, Row] = {}
        self.queue: dict[uuid.UUID, int] = {}
        self.storage: dict[uuid.UUID, tuple[int, int | None]] = {}
        self.secrets: dict[uuid.UUID, str | None] = {}
        #: what one load fetched, by the load's own key (a nested field of a selection)
        self.slots: dict[object, dict[Any, Any]] = {}

    def slot(self, key: object) -> dict[Any, Any]:
        return self.slots.setdefault(key, {})


Getter = Callable[[Row, Env], Any]
_INT32 = range(-(2**31), 2**31)


class Fallback(Exception):
    """The plan cannot answer this request exactly as the interpreted path would (an
    error to report, a value a scalar refuses): run the request interpreted instead."""


def column(name: str) -> Getter:
    return lambda row, env: row[name]


#: what signing a job's URLs reads: the grant (id, public) and the owner
SIGN_COLUMNS = ("id", "public", "user_id")


def signed_column(name: str) -> Getter:
    return lambda row, env: env.sign(row, row[name])


def signed_list(name: str) -> Getter:
    return lambda row, env: env.sign(row, row[name] or [])


def as_float(name: str) -> Getter:
    def get(row: Row, env: Env) -> float | None:
        value = row[name]
        return None if value is None else float(value)

    return get


def as_list(name: str) -> Getter:
    return lambda row, env: row[name] or []


def as_iso(name: str) -> Getter:
    def get(row: Row, env: Env) -> str | None:
        value = row[name]
        return None if value is None else value.isoformat()

    return get


def as_int32(name: str) -> Getter:
    def get(row: Row, env: Env) -> int | None:
        value = row[name]
        if value is not None and value not in _INT32:
            raise Fallback  # GraphQL Int refuses it: the interpreted path reports the error
        return value  # type: ignore[no-any-return]

    return get


_STATUS_NAMES = {s.value: s.name for s in JobStatus}


def _status(row: Row, env: Env) -> str:
    return _STATUS_NAMES[row["status"]]


def queue_position(row: Row, env: Env) -> int | None:
    """As GenerationJob.queuePosition: null unless PENDING, else the jobs ahead."""
    if row["status"] != JobStatus.PENDING.value:
        return None
    return env.queue.get(row["id"])


def const(value: Any) -> Getter:
    return lambda row, env: value


def _job_id(kind: Kind) -> Getter:
    type_name = JOB_TYPE_NAMES[kind]
    return lambda row, env: to_global_id(type_name, row["id"])


# GraphQL field -> (columns, getter factory by kind). Type-specific fields appear only
# on the types that have them (validation and field collection see to that).
JobField = tuple[tuple[str, ...], Callable[[Kind], Getter]]
JOB_FIELDS: dict[str, JobField] = {
    "id": (("id",), _job_id),
    "outputType": ((), lambda kind: const(kind.name)),
    "workflowName": (("workflow_name",), lambda kind: column("workflow_name")),
    "status": (("status",), lambda kind: _status),
    "progress": (("progress",), lambda kind: as_float("progress")),
    "parameters": (("parameters", *SIGN_COLUMNS), lambda kind: signed_column("parameters")),
    "public": (("public",), lambda kind: column("public")),
    "createdAt": (("created_at",), lambda kind: as_iso("created_at")),
    "startedAt": (("started_at",), lambda kind: as_iso("started_at")),
    "completedAt": (("completed_at",), lambda kind: as_iso("completed_at")),
    "processingTimeSeconds": (
        ("processing_time_seconds",),
        lambda kind: as_float("processing_time_seconds"),
    ),
    "errorMessage": (("error_message",), lambda kind: column("error_message")),
    "comfyJobId": (("comfy_job_id",), lambda kind: column("comfy_job_id")),
    "comfyUrl": (("comfy_url",), lambda kind: column("comfy_url")),
    "costUsd": (("cost_usd",), lambda kind: as_float("cost_usd")),
    "pinned": (("pinned",), lambda kind: column("pinned")),
    "expiredAt": (("expired_at",), lambda kind: as_iso("expired_at")),
    # expiresAt is not here: it reads RETENTION_DAYS, so the interpreter answers it.
    "prompt": (("prompt",), lambda kind: column("prompt")),
    "outputText": (("output_text",), lambda kind: column("output_text")),
    "width": (("width",), lambda kind: as_int32("width")),
    "height": (("height",), lambda kind: as_int32("height")),
    "fps": (("fps",), lambda kind: as_int32("fps")),
    "sampleRate": (("sample_rate",), lambda kind: as_int32("sample_rate")),
    "durationSeconds": (("duration_seconds",), lambda kind: as_float("duration_seconds")),
}
for _graphql, _column in {
    "inputImageUrls": "input_image_urls",
    "inputAudioUrls": "input_audio_urls",
    "inputVideoUrls": "input_video_urls",
    "outputVideoUrls": "output_video_urls",
    "outputImageUrls": "output_image_urls",
    "outputAudioUrls": "output_audio_urls",
    "outputUrls": "output_urls",
}.items():
    JOB_FIELDS[_graphql] = (
        (_column, *SIGN_COLUMNS),
        lambda kind, c=_column: signed_list(c),  # type: ignore[misc]
    )


def _user_id(row: Row, env: Env) -> str:
    return to_global_id("User", row["id"])


def _email(row: Row, env: Env) -> str:
    """As User.email: only the user and admins see it."""
    return row["email"] if can_see_user(env.viewer, row["id"]) else ""


_ROLE_NAMES = {r.value: r.name for r in Role}
USER_FIELDS: dict[str, Getter] = {
    "id": _user_id,
    "email": _email,
    "fullName": column("full_name"),
    "role": lambda row, env: _ROLE_NAMES[row["role"]],
    "createdAt": as_iso("created_at"),
}


def _attr_int32(name: str) -> Callable[[JobOutput], Any]:
    def get(out: JobOutput) -> int | None:
        value = getattr(out, name)
        if value is not None and value not in _INT32:
            raise Fallback
        return value  # type: ignore[no-any-return]

    return get


# JobOutput objects come from schema.jobs.job_output, the function the interpreted
# path uses, so both read an output's jsonb the same way.
OUTPUT_FIELDS: dict[str, Callable[[JobOutput], Any]] = {
    "kind": lambda out: out.kind.name,
    "url": lambda out: out.url,
    "filename": lambda out: out.filename,
    "mimeType": lambda out: out.mime_type,
    "node": lambda out: out.node,
    "width": _attr_int32("width"),
    "height": _attr_int32("height"),
    "durationSeconds": lambda out: out.duration_seconds,
    "sizeBytes": lambda out: out.size_bytes,
}
