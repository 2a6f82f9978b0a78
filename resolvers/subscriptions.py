"""Subscriptions: jobProgress, jobUpdates, sessionProgress.

A resolver here runs once per *stream*, not once per client: server/realtime runs one
execution for all clients whose subscriptions are identical (same document, variables
and audience) and hands each of them the same serialised event. Hence two halves:

- `audience` runs for every client before it joins a stream. It is the permission
  check (NOT_FOUND for what the viewer may not see, exactly as for what does not exist;
  INVALID_ID for a malformed id) and names the class of viewers who see the very same
  events: all admins, the owner, or everyone else (a public job).
- the resolvers follow the broadcast through `Live` (the stream's context). They read
  the database only when the state changed (a status event, a lost broadcast link),
  never on a progress tick, and say what each event is (`Live.emit`): a full state,
  which a client joining later receives first, and/or transient, which a newer event
  may replace in a slow client's queue.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, Callable, Hashable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import strawberry

from comfygraph.db.assets import assets_by_ids
from comfygraph.db.feed import JobQuery, job_page, jobs_by_ids, jobs_changed_since
from comfygraph.db.kinds import OutputType as Kind
from comfygraph.db.queue import queue_positions
from comfygraph.db.sessions import get_session
from comfygraph.db.visibility import Scope, Viewer, can_see_job, can_see_session
from comfygraph.domain.statuses import TERMINAL
from comfygraph.resolvers.args import job_id, job_query, session_id
from comfygraph.resolvers.mapping import asset_from_row, job_from_row, session_from_row
from comfygraph.schema.enums import JobStatus
from comfygraph.schema.errors import NOT_FOUND, NOT_IMPLEMENTED, ApiError
from comfygraph.schema.jobs import AnyJob, Job, JobFilter
from comfygraph.schema.progress import JobProgress, NodeProgress
from comfygraph.schema.sessions import Asset, Session, SessionEvent
from comfygraph.studio.channels import (
    ALL_FEED,
    PUBLIC_FEED,
    job_channel,
    session_channel,
    user_feed_channel,
)

if TYPE_CHECKING:
    from comfygraph.resolvers.context import Context

#: Every job, published by the job events once someone asks for it (an admin's ALL
#: scope needs it); until then an admin's ALL feed is their own jobs plus public ones.
ALL_JOBS_FEED: str | None = ALL_FEED


# ---------------------------------------------------------------- what a stream offers


class Resync:
    """Events may have been lost (the broadcast link came back, or a publisher gave
    events up): re-read the state. `seconds`: how far back the loss may reach, when known."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float | None = None) -> None:
        self.seconds = seconds


RESYNC = Resync()
#: how far before a reported gap changes are re-read (a dead link is noticed late)
RESYNC_SLACK_SECONDS = 60.0
#: at most this many changed jobs are re-sent after a gap
RESYNC_CHANGED_MAX = 500


class Event(Protocol):
    """One event from the broadcast (shared by every listener: read-only)."""

    @property
    def channel(self) -> str: ...

    @property
    def data(self) -> Mapping[str, Any]: ...


class Events(Protocol):
    """What `Live.listen` yields: the events, and how many are queued already."""

    def __aiter__(self) -> Events: ...

    async def __anext__(self) -> Event | Resync: ...

    @property
    def pending(self) -> int: ...


@runtime_checkable
class Live(Protocol):
    """What a subscription resolver gets from its stream's context (server.realtime)."""

    def listen(
        self,
        channels: Sequence[str],
        *,
        queue_of: uuid.UUID | None = None,
        key_of: Callable[[Event], Hashable | None] | None = None,
    ) -> AbstractAsyncContextManager[Events]:
        """Receive these channels' events (listening once entered: read the state after).
        With `queue_of`, also {"type": "queue", "position": n} events while that job
        waits in the dispatch queue and its position changes. With `key_of`, a queued
        event is replaced by a newer one of the same key (a resolver that re-reads what
        an event points at needs only the latest)."""
        ...

    def emit(self, *, state: bool = False, transient: bool = False, fresh: bool = False) -> None:
        """Say what the value about to be yielded is; `fresh` forgets what the context's
        DataLoaders cached (the context lives as long as the stream)."""
        ...


@dataclass(frozen=True)
class Audience:
    """Who sees exactly the same events: the clients one stream may serve."""

    key: Hashable
    #: the ad session followed (recorded on the websocket connection)
    session_id: uuid.UUID | None = None


def _live(info: strawberry.Info[Context, None]) -> Live:
    context = info.context
    if not isinstance(context, Live):
        raise ApiError(
            NOT_IMPLEMENTED,
            "subscriptions are served over websockets (graphql-transport-ws or graphql-ws)",
        )
    return context


def _not_found(what: str) -> ApiError:
    return ApiError(NOT_FOUND, f"no such {what}")


async def audience(context: Context, field: str, args: Mapping[str, Any]) -> Audience:
    """The permission check for one client, and the class of viewers it belongs to."""
    viewer = context.viewer
    if field == "jobProgress":
        kind, uid = job_id(args["id"])
        row = await _job_row(context, kind, uid)
        if row is None or not can_see_job(viewer, row):
            raise _not_found("job")
        if viewer.is_admin:
            return Audience(("admin",))
        # Everyone else sees the same: the session (owner and admins only) reads as null.
        return Audience(("owner",) if row["user_id"] == viewer.user_id else ("public",))
    if field == "sessionProgress":
        sid = session_id(args["id"])
        async with context.db.acquire() as conn:
            row = await get_session(conn, sid)
        if row is None or not can_see_session(viewer, row):
            raise _not_found("session")
        return Audience(("admin",) if viewer.is_admin else ("owner",), session_id=sid)
    return Audience(("viewer", viewer.user_id, viewer.is_admin))


# ---------------------------------------------------------------- jobProgress


async def _job_row(context: Context, kind: Kind, uid: uuid.UUID) -> Any:
    async with context.db.acquire() as conn:
        return (await jobs_by_ids(conn, [uid], [kind])).get(uid)


def _event_row(data: Mapping[str, Any]) -> dict[str, Any]:
    """The visibility columns of a status event, shaped like a row for db.visibility."""
    owner = data.get("owner")
    return {
        "deleted_at": True if data.get("deleted") else None,
        "public": bool(data.get("public")),
        "user_id": uuid.UUID(owner) if isinstance(owner, str) else None,
    }


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass
class _JobState:
    """The last known state of one followed job: read on status changes, ticked between."""

    job: AnyJob
    status: JobStatus
    progress: float
    queue_position: int | None
    node: str | None = None
    node_progress: NodeProgress | None = None
    eta_seconds: float | None = None
    preview_url: str | None = None

    @classmethod
    def read(cls, job: AnyJob, queue_position: int | None) -> _JobState:
        state = cls(job, job.status, job.progress, None)
        state.reset(job, queue_position)
        return state

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def view(self) -> JobProgress:
        return JobProgress(
            job=self.job,
            status=self.status,
            progress=self.progress,
            node=self.node,
            node_progress=self.node_progress,
            queue_position=self.queue_position,
            eta_seconds=self.eta_seconds,
            preview_url=self.preview_url,
        )

    def reset(self, job: AnyJob, queue_position: int | None) -> None:
        self.job, self.status, self.progress = job, job.status, job.progress
        self.queue_position = queue_position if job.status is JobStatus.PENDING else None
        if job.status is not JobStatus.PROCESSING:
            self.node, self.node_progress, self.eta_seconds = None, None, None

    def tick(self, data: Mapping[str, Any]) -> None:
        """Apply a progress event; no database read (its payload carries everything)."""
        progress = max(self.progress, _float(data.get("progress")) or 0.0)
        self.status, self.progress, self.queue_position = JobStatus.PROCESSING, progress, None
        node, class_type = data.get("node"), data.get("classType")
        value, maximum = _int(data.get("value")), _int(data.get("max"))
        self.node = node if isinstance(node, str) else None
        self.node_progress = None
        if isinstance(node, str) and value is not None and maximum is not None:
            self.node_progress = NodeProgress(
                node=node,
                class_type=class_type if isinstance(class_type, str) else None,
                value=value,
                max=maximum,
            )
        self.eta_seconds = _float(data.get("eta"))
        preview = data.get("previewUrl")
        if isinstance(preview, str):
            self.preview_url = preview
        if self.job.progress != progress or self.job.status is not JobStatus.PROCESSING:
            self.job = replace(self.job, progress=progress, status=JobStatus.PROCESSING)


async def _read_job(context: Context, kind: Kind, uid: uuid.UUID) -> tuple[AnyJob, int | None]:
    """The job as the viewer may see it, and its queue position; NOT_FOUND otherwise."""
    async with context.db.acquire() as conn:
        row = (await jobs_by_ids(conn, [uid], [kind])).get(uid)
        if row is None or not can_see_job(context.viewer, row):
            raise _not_found("job")
        position = None
        if row["status"] == "pending":
            position = (await queue_positions(conn, [uid])).get(uid)
    return job_from_row(kind, row), position


async def job_progress(
    info: strawberry.Info[Context, None], id: strawberry.ID
) -> AsyncGenerator[JobProgress, None]:
    live, context = _live(info), info.context
    kind, uid = job_id(id)
    async with live.listen([job_channel(uid)], queue_of=uid) as events:
        state = _JobState.read(*await _read_job(context, kind, uid))
        live.emit(state=True, fresh=True)
        yield state.view()
        if state.terminal:
            return
        async for event in events:
            data = event.data if not isinstance(event, Resync) else {"type": "resync"}
            kind_of = data.get("type")
            if kind_of == "progress":
                state.tick(data)
                live.emit(state=True, transient=True)
            elif kind_of in ("status", "resync"):
                if kind_of == "status" and not can_see_job(context.viewer, _event_row(data)):
                    raise _not_found("job")
                state.reset(*await _read_job(context, kind, uid))
                live.emit(state=True, fresh=True)
            elif kind_of == "queue" and state.status is JobStatus.PENDING:
                position = _int(data.get("position"))
                if position is None or position == state.queue_position:
                    continue
                state.queue_position = position
                live.emit(state=True)
            else:
                continue
            yield state.view()
            if state.terminal:
                return


# ---------------------------------------------------------------- jobUpdates


def _feed_channels(viewer: Viewer, scope: Scope) -> list[str]:
    own = [] if viewer.user_id is None else [user_feed_channel(viewer.user_id)]
    if scope is Scope.MINE:
        return own
    if scope is Scope.PUBLIC:
        return [PUBLIC_FEED]
    if viewer.is_admin and ALL_JOBS_FEED is not None:
        return [ALL_JOBS_FEED]
    return [*own, PUBLIC_FEED]


def _in_scope(viewer: Viewer, scope: Scope, row: Mapping[str, Any]) -> bool:
    mine = viewer.user_id is not None and row["user_id"] == viewer.user_id
    if scope is Scope.MINE:
        return mine
    if scope is Scope.PUBLIC or viewer.user_id is None:
        return bool(row["public"])
    return mine or bool(row["public"]) or viewer.is_admin


def _matches(viewer: Viewer, query: JobQuery, event: Event) -> bool:
    """Whether a feed event may concern this subscription (no database read)."""
    data = event.data
    if data.get("type") != "status":
        return False
    row = _event_row(data)
    if (
        event.channel == PUBLIC_FEED
        and query.scope is Scope.ALL
        and viewer.user_id is not None
        and row["user_id"] == viewer.user_id
    ):
        return False  # the viewer's own feed carries it too
    if not can_see_job(viewer, row) or not _in_scope(viewer, query.scope, row):
        return False
    if data.get("kind") not in {k.value for k in query.output_types}:
        return False
    if query.workflow_names is not None and data.get("workflow") not in query.workflow_names:
        return False
    if query.statuses is not None and data.get("status") not in query.statuses:
        return False
    return query.session_id is None or data.get("session") == str(query.session_id)


async def _changed_jobs(
    context: Context, query: JobQuery, events: Sequence[Mapping[str, Any]]
) -> list[AnyJob]:
    """The jobs these status events name, as they are now (read in one statement), in
    the events' order, leaving out what the viewer may not see or the query excludes."""
    wanted: list[tuple[Kind, uuid.UUID]] = []
    for data in events:
        try:
            wanted.append((Kind(data["kind"]), uuid.UUID(str(data["id"]))))
        except (KeyError, ValueError):
            continue
    if not wanted:
        return []
    async with context.db.acquire() as conn:
        kinds = list(dict.fromkeys(kind for kind, _ in wanted))
        rows = await jobs_by_ids(conn, {uid for _, uid in wanted}, kinds)
    changed = []
    for kind, uid in wanted:
        row = rows.get(uid)
        if row is None or not can_see_job(context.viewer, row):
            continue
        if not _in_scope(context.viewer, query.scope, row):
            continue
        created = row["created_at"]
        if query.created_after is not None and not created > query.created_after:
            continue
        if query.created_before is not None and not created < query.created_before:
            continue
        changed.append(job_from_row(kind, row))
    return changed


def _latest_of_job(event: Event) -> Hashable | None:
    """jobUpdates' coalescing: it re-reads the job an event names, so of one job's events
    still queued on a channel only the newest matters (a subscriber that lags behind a
    burst reads each job once, not once per step it took)."""
    data = event.data
    if data.get("type") != "status":
        return None  # a publisher's resync marker and the like: never merged
    return (event.channel, data.get("id"))


#: status events read together when they are queued already
_BATCH = 100


async def _newest(context: Context, query: JobQuery, gap: float | None) -> list[AnyJob]:
    """After a gap: every matching job changed since it began (oldest change first),
    then the newest ones not among them."""
    count = context.limits.resync_jobs
    seconds = (gap or 0.0) + RESYNC_SLACK_SECONDS
    async with context.db.acquire() as conn:
        changed = await jobs_changed_since(
            conn, context.viewer, query, seconds=seconds, limit=RESYNC_CHANGED_MAX
        )
        page = await job_page(conn, context.viewer, query, first=count) if count > 0 else None
    seen = {row["id"] for row in changed}
    newest = [row for row in (page.rows if page else []) if row["id"] not in seen]
    return [job_from_row(Kind(row["kind"]), row) for row in (*reversed(newest), *changed)]


async def job_updates(
    info: strawberry.Info[Context, None], filter: JobFilter | None = strawberry.UNSET
) -> AsyncGenerator[Job, None]:
    live, context = _live(info), info.context
    viewer = context.viewer
    query = job_query(viewer, filter)
    channels = _feed_channels(viewer, query.scope)
    if not channels:  # an anonymous viewer's own jobs: there are none, ever
        await asyncio.get_running_loop().create_future()
    async with live.listen(channels, key_of=_latest_of_job) as events:
        async for first in events:
            # The events already queued are read with this one: one statement for a
            # burst of changes, not one each (a resync among them ends the batch).
            batch: list[Event] = []
            resync: Resync | None = None
            if isinstance(first, Resync):
                resync = first
            else:
                batch.append(first)
                while events.pending and len(batch) < _BATCH:
                    event = await anext(events)
                    if isinstance(event, Resync):
                        resync = event
                        break
                    batch.append(event)
            matching = [e.data for e in batch if _matches(viewer, query, e)]
            for changed in await _changed_jobs(context, query, matching):
                live.emit(fresh=True)
                yield changed
            if resync is not None:
                # What changed during the gap is unknown: send the newest matching again.
                for job in await _newest(context, query, resync.seconds):
                    live.emit(fresh=True)
                    yield job


# ---------------------------------------------------------------- sessionProgress


async def _read_session(context: Context, sid: uuid.UUID) -> Session:
    async with context.db.acquire() as conn:
        row = await get_session(conn, sid)
    if row is None or not can_see_session(context.viewer, row):
        raise _not_found("session")
    return session_from_row(row)


async def _read_asset(context: Context, sid: uuid.UUID, value: Any) -> Asset | None:
    try:
        uid = uuid.UUID(str(value))
    except ValueError:
        return None
    async with context.db.acquire() as conn:
        row = (await assets_by_ids(conn, [uid])).get(uid)
    return asset_from_row(row) if row is not None and row["session_id"] == sid else None


async def session_progress(
    info: strawberry.Info[Context, None], id: strawberry.ID
) -> AsyncGenerator[SessionEvent, None]:
    live, context = _live(info), info.context
    sid = session_id(id)
    async with live.listen([session_channel(sid)]) as events:
        live.emit(state=True, fresh=True)
        yield await _read_session(context, sid)
        async for event in events:
            kind_of = "resync" if isinstance(event, Resync) else event.data.get("type")
            if kind_of in ("session", "resync"):
                session = await _read_session(context, sid)
                live.emit(state=True, fresh=True)
                yield session
            elif kind_of == "asset" and not isinstance(event, Resync):
                asset = await _read_asset(context, sid, event.data.get("id"))
                if asset is not None:
                    live.emit(fresh=True)
                    yield asset
