"""Run one claimed job on its worker and follow it to a terminal state.

prepare (bind parameters, upload inputs) -> record prompt_id -> POST /prompt ->
follow the events (progress, previews) -> on success download outputs, fill the
row, record the cost -> COMPLETED; else FAILED with the node and message, or one
re-queue when the worker lost the job. Every transition is guarded on PROCESSING:
if the job was cancelled meanwhile, the runner's transition is refused and it stops.
A database outage is ridden out (studio/db_retry.py): the writes are retried in order
for up to `db_retry_seconds`; past that the job is left PROCESSING for lease recovery.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Any, TypeVar

import asyncpg
import structlog

from comfygraph.comfy.client import ComfyClient, Job
from comfygraph.comfy.errors import (
    ComfyError,
    ExecutionFailed,
    ExecutionInterrupted,
    JobStalled,
    JobTimeout,
    PromptNotFound,
    PromptRejected,
    WorkerUnavailable,
)
from comfygraph.comfy.messages import PreviewImage
from comfygraph.comfy.outputs import job_columns
from comfygraph.comfy.templates import TemplateSet, bind
from comfygraph.comfy.workers import Worker, WorkerPool
from comfygraph.db.assets import asset_id_for_job
from comfygraph.db.costs import record_cost
from comfygraph.db.errors import IllegalTransition, NotFound
from comfygraph.db.jobs import get_job, set_progress, transition, update_job
from comfygraph.db.kinds import OutputType
from comfygraph.db.node_stats import TOTAL, load_node_stats, record_node_stats
from comfygraph.db.unreachable import database_down
from comfygraph.storage import Storage
from comfygraph.studio.channels import JobEvents
from comfygraph.studio.db_retry import DatabaseGone, retrying
from comfygraph.studio.outputs import collect
from comfygraph.studio.progress import ProgressModel
from comfygraph.studio.stall import prompt_id_for, stalled

log = logging.getLogger(__name__)
T = TypeVar("T")
Listener = Callable[[OutputType, asyncpg.Record], Awaitable[None]]
# (kind, job row as claimed, the progress just stored): called at most every progress_interval
ProgressListener = Callable[[OutputType, asyncpg.Record, float], Awaitable[None]]
COST_CATEGORY = {
    "video": "video_generation",
    "image": "image_generation",
    "text": "text_generation",
    "audio": "audio_generation",
}


class JobFailed(Exception):
    """The job cannot run (bad inputs, unknown workflow); the message is for its owner."""


class NotSent(Exception):
    """The prompt never reached the worker (no connection could be made): the attempt
    did not happen, so the job goes back to the queue without spending one."""


@contextlib.contextmanager
def _unsent() -> Iterator[None]:
    """Around what comes before the prompt is on the worker: a connection that could not
    be made there means nothing ran (NotSent)."""
    try:
        yield
    except WorkerUnavailable as exc:
        if not exc.reached:
            raise NotSent(str(exc)) from exc
        raise


@dataclass
class RunnerConfig:
    job_timeout: float = 3600.0
    stall_seconds: float = (
        120.0  # no change on the worker this long: interrupted (template may say)
    )
    max_attempts: int = 2  # a job the worker lost is re-queued once, then failed
    progress_interval: float = 1.0  # at most this often progress is written to the row
    publish_interval: float = 0.1  # at most this often a tick is published (same node)
    preview_interval: float = 1.0
    # A write that meets a database outage is retried this long: the lease length, past
    # which another replica may have adopted the job.
    db_retry_seconds: float = 30.0


@dataclass
class JobRunner:
    pool: asyncpg.Pool
    workers: WorkerPool
    templates: TemplateSet
    store: Storage
    events: JobEvents
    config: RunnerConfig = field(default_factory=RunnerConfig)
    listeners: list[Listener] = field(default_factory=list)  # called after a terminal state
    progress_listeners: list[ProgressListener] = field(default_factory=list)  # after a store
    # job id -> the replica whose claim this runner follows (claimed_by of its row)
    _owners: dict[uuid.UUID, str | None] = field(default_factory=dict, init=False)

    async def run(self, kind: OutputType, row: asyncpg.Record, worker: Worker) -> None:
        """Own a PROCESSING job until it ends. `row['comfy_job_id']` set means the job
        was already submitted (recovery): follow it instead of submitting again."""
        job_id = row["id"]
        # Every log line of this job's task says which job and prompt it is about.
        structlog.contextvars.bind_contextvars(
            job_id=str(job_id), prompt_id=prompt_id_for(job_id, row["attempts"])
        )
        self._owners[job_id] = row.get("claimed_by")
        try:
            await self._outcome(kind, row, worker)
        except DatabaseGone as exc:
            # Said once, here: the row stays PROCESSING with its prompt id, and when the
            # lease expires a replica adopts it and follows the prompt on its worker.
            log.error("%s; giving up: the job is left for lease recovery", exc)
        finally:
            self._owners.pop(job_id, None)
            self.workers.release(worker, str(job_id))

    async def _outcome(self, kind: OutputType, row: asyncpg.Record, worker: Worker) -> None:
        job_id = row["id"]
        try:
            await self._run(kind, row, worker)
        except JobFailed as exc:
            await self._end(kind, job_id, "failed", error_message=str(exc))
        except ExecutionFailed as exc:
            message = (exc.exception_message or "").strip()
            await self._end(
                kind,
                job_id,
                "failed",
                error_message=f"node {exc.node_id} ({exc.node_type}): {message}",
            )
        except PromptRejected as exc:
            await self._end(kind, job_id, "failed", error_message=f"worker rejected it: {exc}")
        except ExecutionInterrupted:
            # A cancel already moved the row to CANCELLED (this is then refused);
            # an interrupt nobody asked for is a failure.
            await self._end(kind, job_id, "failed", error_message="interrupted on the worker")
        except JobTimeout:
            await self._end(
                kind,
                job_id,
                "failed",
                error_message=f"timed out after {self.config.job_timeout:g} s",
            )
        except NotSent as exc:
            await self._not_sent(kind, row, worker, exc)
        except (PromptNotFound, WorkerUnavailable) as exc:
            await self._lost(kind, row, worker, exc)
        except JobStalled as exc:
            await stalled(self, kind, row, worker, exc)
        except ComfyError as exc:
            await self._end(kind, job_id, "failed", error_message=f"worker error: {exc}")

    async def _write(
        self, what: str, job_id: uuid.UUID, write: Callable[[asyncpg.Connection], Awaitable[T]]
    ) -> T:
        """One of this job's writes, retried through a database outage (in order: the
        runner awaits each before the next)."""
        return await retrying(
            self.pool, write, what=f"{what} of job {job_id}", bound=self.config.db_retry_seconds
        )

    async def _run(self, kind: OutputType, row: asyncpg.Record, worker: Worker) -> None:
        template = self.templates.get(row["workflow_name"], row.get("template_version"))
        if template is None:
            raise JobFailed(f"unknown workflow {row['workflow_name']!r}")
        prompt_id = prompt_id_for(row["id"], row["attempts"])
        weights = await self._write(
            "reading the node timings", row["id"], lambda conn: load_node_stats(conn, template.name)
        )
        model = ProgressModel(template.graph, weights)
        client = worker.client
        stall = template.stall_seconds or self.config.stall_seconds
        if row["comfy_job_id"]:
            context = client.watch(
                row["comfy_job_id"], timeout=self.config.job_timeout, stall_after=stall
            )
        else:
            with _unsent():
                inputs = await self._upload_inputs(row, client)
            graph = bind(template, row["parameters"], inputs)
            await self._write(  # recorded before submitting
                "recording the prompt id",
                row["id"],
                lambda conn: update_job(
                    conn, kind, row["id"], comfy_job_id=prompt_id, comfy_url=worker.url
                ),
            )
            context = client.submit_and_watch(
                graph, prompt_id=prompt_id, timeout=self.config.job_timeout, stall_after=stall
            )
        started = time.monotonic()
        # Entering submits the prompt, unless it follows one sent before.
        sending = contextlib.nullcontext() if row["comfy_job_id"] else _unsent()
        async with contextlib.AsyncExitStack() as stack:
            with sending:
                job = await stack.enter_async_context(context)
            await self._follow(kind, row, job, model, weights.get(TOTAL))
            result = await job.wait()
        collected = await collect(
            client, result, self.store, workflow=template.name, job_id=row["id"]
        )
        seconds = time.monotonic() - started
        cost = None
        if worker.price_per_hour is not None:
            cost = Decimal(str(round(worker.price_per_hour * seconds / 3600, 6)))
        done = await self._end(
            kind,
            row["id"],
            "completed",
            notify=False,
            cost_usd=cost,
            **job_columns(kind.value, collected),
        )
        if done is None:
            return

        async def account(conn: asyncpg.Connection) -> None:
            if cost is None:  # one statement: no transaction to wrap it in
                await record_node_stats(conn, template.name, model.durations, seconds)
                return
            async with conn.transaction():  # all or nothing, so a retry counts nothing twice
                await record_node_stats(conn, template.name, model.durations, seconds)
                await record_cost(
                    conn,
                    category=COST_CATEGORY[kind.value],
                    amount=cost,
                    job_id=row["id"],
                    session_id=row["session_id"],
                    asset_id=(
                        await asset_id_for_job(conn, row["id"]) if row["session_id"] else None
                    ),
                    provider="comfyui",
                    model_name=template.name,
                    api_call_id=prompt_id,
                    seconds_processed=round(seconds, 2),
                    api_latency_ms=int(seconds * 1000),
                    metadata={"worker": worker.url},
                )

        try:
            await self._write("recording the cost", row["id"], account)
        except DatabaseGone as exc:  # the job itself is complete: only its accounting is lost
            log.error("%s; giving up: its cost and node timings are not recorded", exc)
        finally:  # listeners see a completed job whose cost row is already written
            await self._notify(kind, done)

    async def _upload_inputs(self, row: asyncpg.Record, client: ComfyClient) -> dict[str, Any]:
        template = self.templates.get(row["workflow_name"], row.get("template_version"))
        assert template is not None
        names: dict[str, Any] = {}
        for parameter in template.parameters:
            value = row["parameters"].get(parameter.name)
            if not parameter.is_file or value is None:
                continue
            urls = value if isinstance(value, list) else [value]
            uploaded = []
            for index, url in enumerate(urls):
                key = self.store.key_for_url(url)
                if key is None:
                    raise JobFailed(f"input {parameter.name} is not a stored upload: {url}")
                suffix = PurePosixPath(key).suffix
                name = f"{row['id'].hex[:12]}_{parameter.name}_{index}{suffix}"
                uploaded.append(
                    await client.upload_image(await self.store.read(key), name, overwrite=True)
                )
            names[parameter.name] = uploaded if isinstance(value, list) else uploaded[0]
        return names

    async def _follow(
        self,
        kind: OutputType,
        row: asyncpg.Record,
        job: Job,
        model: ProgressModel,
        expected_total: float | None,
    ) -> None:
        last_tick = last_preview = last_publish = 0.0
        last_node: str | None = None
        preview_url: str | None = None
        node_value: tuple[float, float] | None = None
        async for message in job:
            if isinstance(message, PreviewImage):
                now = time.monotonic()
                if now - last_preview >= self.config.preview_interval:
                    last_preview = now
                    suffix = "png" if "png" in message.image_format else "jpg"
                    stored = await self.store.put(f"previews/{row['id']}.{suffix}", message.data)
                    preview_url = f"{stored.url}?v={int(now * 1000)}"
                continue
            if not isinstance(message, dict):
                continue  # Reconnected / Lagged markers: the Job reconciles by itself
            kind_of = message.get("type")
            data: dict[str, Any] = message.get("data") or {}  # type: ignore[assignment]
            if kind_of == "execution_cached":
                model.cached(data.get("nodes") or [])
            elif kind_of == "executing":
                model.executing(data.get("node"))
                node_value = None
            elif kind_of == "progress":
                node_value = (float(data.get("value", 0)), float(data.get("max", 0)))
                model.node_progress(data.get("node"), *node_value)
            elif kind_of == "progress_state":
                model.node_states(data.get("nodes") or {})
            elif kind_of == "executed":
                model.executed(str(data.get("node")))
            else:
                continue
            # A sampler reports every step: publish at most every publish_interval (or
            # when the running node changes), store at most every progress_interval.
            now = time.monotonic()
            node = model.current_node
            if node == last_node and now - last_publish < self.config.publish_interval:
                continue
            last_node, last_publish = node, now
            persist = now - last_tick >= self.config.progress_interval
            if persist:
                last_tick = now
            if not await self._tick(
                kind, row, model, node_value, expected_total, preview_url, persist=persist
            ):
                return

    async def _tick(
        self,
        kind: OutputType,
        row: asyncpg.Record,
        model: ProgressModel,
        node_value: tuple[float, float] | None,
        expected_total: float | None,
        preview_url: str | None,
        *,
        persist: bool,
    ) -> bool:
        """Publish the job's progress (and store it when `persist`); False once the job
        is no longer PROCESSING (cancelled), after which nothing more is said."""
        stored: float | None = model.percent
        if persist:
            try:
                async with self.pool.acquire() as conn:
                    stored = await set_progress(conn, kind, row["id"], model.percent)
            except Exception as exc:
                # Not retried: the next tick stores a newer value, and waiting here would
                # hold up the worker's messages. The final transition is retried.
                if not database_down(exc):
                    raise
                log.info("job %s: progress not stored (database unreachable)", row["id"])
                stored = model.percent
            else:
                if stored is None:
                    return False
                await self._progressed(kind, row, stored)
        assert stored is not None
        node = model.current_node
        value, maximum = node_value or (None, None)
        await self.events.progress(
            kind.value,
            row["id"],
            progress=stored,
            node=node,
            class_type=model.class_types.get(node or ""),
            value=value,
            maximum=maximum,
            eta_seconds=model.eta_seconds(expected_total),
            preview_url=preview_url,
            session_id=row["session_id"],
        )
        return True

    async def _progressed(self, kind: OutputType, row: asyncpg.Record, stored: float) -> None:
        for progress_listener in self.progress_listeners:
            try:
                await progress_listener(kind, row, stored)
            except Exception:
                log.exception("progress listener failed for job %s", row["id"])

    async def _lost(
        self, kind: OutputType, row: asyncpg.Record, worker: Worker, exc: ComfyError
    ) -> None:
        if isinstance(exc, WorkerUnavailable):
            self.workers.mark_unhealthy(worker, str(exc))
        self.workers.stale(worker)  # it may have restarted: read what it can run again
        template = self.templates.get(row["workflow_name"], row.get("template_version"))
        requeue = template is not None and template.requeue_lost
        if requeue and row["attempts"] < self.config.max_attempts:
            log.warning("job %s lost on %s (%s): re-queued", row["id"], worker.url, exc)
            await self._end(kind, row["id"], "pending")
        else:
            await self._end(
                kind, row["id"], "failed", error_message=f"lost on worker {worker.url}: {exc}"
            )

    async def _not_sent(
        self, kind: OutputType, row: asyncpg.Record, worker: Worker, exc: NotSent
    ) -> None:
        """Another replica (or this one) may claim it for a worker it has not seen die
        yet; each such try is free, and each marks that worker down where it ran."""
        self.workers.mark_unhealthy(worker, str(exc))
        self.workers.stale(worker)
        log.warning("job %s not sent to %s (%s): re-queued", row["id"], worker.url, exc)
        await self._end(kind, row["id"], "pending", attempts=row["attempts"] - 1)

    async def _end(
        self,
        kind: OutputType,
        job_id: uuid.UUID,
        target: str,
        *,
        notify: bool = True,
        **columns: Any,
    ) -> asyncpg.Record | None:
        """The guarded final transition, then its event (after commit) and, unless the
        caller will do it itself (`notify=False`), the listeners."""
        tries = 0

        async def move(conn: asyncpg.Connection) -> asyncpg.Record:
            nonlocal tries
            tries += 1
            return await transition(
                conn, kind, job_id, target, expect_from=("processing",), **columns
            )

        try:
            row = await self._write(f"moving to {target}", job_id, move)
        except (IllegalTransition, NotFound) as exc:
            moved = None
            if tries > 1 and isinstance(exc, IllegalTransition) and exc.current == target:
                # A retry: the try before may have committed, its reply lost with the
                # connection. Then the move is ours and its event and listeners are due;
                # unless another replica adopted the job meanwhile and moved it itself.
                moved = await self._write(
                    "reading the moved row", job_id, lambda conn: get_job(conn, kind, job_id)
                )
                if moved is not None and target != "pending":  # pending clears claimed_by
                    if moved["claimed_by"] != self._owners.get(job_id):
                        moved = None
            if moved is None:
                log.info("job %s not moved to %s: %s", job_id, target, exc)
                return None
            row = moved
        await self.events.status(kind.value, row)
        if notify:
            await self._notify(kind, row)
        return row

    async def _notify(self, kind: OutputType, row: asyncpg.Record) -> None:
        for listener in self.listeners:
            try:
                await listener(kind, row)
            except Exception:
                log.exception("job listener failed for job %s", row["id"])
