"""The ad-video session pipeline (seed 004) on top of the job machinery.

Each generation is a job submitted through comfy.submit (owned by the session's owner)
and each job makes one asset that points at it. Mutations start stages; jobs ending
(the runner's listener, on whichever replica tracks the job) settle assets and move
the session on. See comfy.sessions.states for the state machine and progress formula.

Concurrency: every step that reads and changes a session's state holds that session's
row lock (db.sessions.lock_session) for its transaction, so steps on one session take
turns across replicas, and each status move is also a guarded UPDATE: a stage advances
exactly once however many of its jobs end at the same moment. `settle` is idempotent: it
derives everything from the jobs' rows, so calling it again (or late) is always safe.

Starting a stage submits its jobs first, then, in one transaction under the lock,
re-checks the state, creates the assets and moves the status; a job that ended before
its asset existed is caught by the `settle` that every start ends with. If the state
changed meanwhile (a double click, a cancel), the new jobs are cancelled again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg

from comfygraph.comfy.templates import TemplateSet
from comfygraph.comfy.workers import WorkerPool
from comfygraph.db import assets as db_assets
from comfygraph.db import costs as db_costs
from comfygraph.db import sessions as db_sessions
from comfygraph.db.errors import IllegalTransition, NotFound
from comfygraph.db.kinds import OutputType
from comfygraph.db.visibility import Viewer, can_change_session
from comfygraph.domain.statuses import TERMINAL
from comfygraph.storage import Storage
from comfygraph.studio.cancel import cancel_job
from comfygraph.studio.channels import JobEvents, Publish
from comfygraph.studio.files import may_use
from comfygraph.studio.runner import JobRunner
from comfygraph.studio.sessions import plan, states
from comfygraph.studio.sessions.channels import SessionEvents
from comfygraph.studio.sessions.estimate import per_run_costs, session_estimate
from comfygraph.studio.sessions.inputs import SessionSpec, session_columns
from comfygraph.studio.sessions.plan import Planned
from comfygraph.studio.sessions.states import CLIPS, FINAL, IMAGES, Stage
from comfygraph.studio.submit import Problem, Submitted, submit

log = logging.getLogger(__name__)
JobRef = tuple[OutputType, uuid.UUID]
COMPOSITION_COST = "composition"  # seed 004's cost category of the final video
ESTIMATE_RECENT = 100  # estimatedCost averages the last this many runs of each workflow


@dataclass(frozen=True)
class Outcome:
    """A mutation's result: the session row afterwards, or the problems that stopped it."""

    session: asyncpg.Record | None = None
    problems: list[Problem] = field(default_factory=list)


def _problem(code: str, message: str, *path: str) -> Outcome:
    return Outcome(problems=[Problem(code, message, path)])


NOT_FOUND = _problem("NOT_FOUND", "no session with this id", "sessionId")


def _invalid_state(session: asyncpg.Record, action: str) -> Outcome:
    return _problem("INVALID_STATE", f"a {session['status']} session cannot {action}", "sessionId")


@dataclass
class SessionPipeline:
    pool: asyncpg.Pool
    templates: TemplateSet
    store: Storage | None
    publish: Publish
    workers: WorkerPool | None = None
    wake: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        self.events = SessionEvents(self.publish)
        self.job_events = JobEvents(self.publish)

    def register(self, runner: JobRunner) -> None:
        """Follow the runner's jobs: settle their sessions as they end, raise progress."""
        runner.listeners.append(self.on_job_ended)
        runner.progress_listeners.append(self.on_job_progress)

    # ------------------------------------------------------------ mutations

    async def create(self, viewer: Viewer, spec: SessionSpec) -> Outcome:
        assert viewer.user_id is not None, "callers check that the viewer is signed in"
        compose = self.templates.get(FINAL.workflow)
        font = compose.parameter("text_font") if compose else None
        music = (spec.music_url or "").strip()
        music_ok = bool(music) and await self._may_use(viewer, music)
        columns, problems = session_columns(
            spec,
            fonts=(font.choices or ()) if font else (),
            is_stored_file=lambda url: music_ok and url == music,
        )
        if problems:
            return Outcome(problems=problems)
        async with self.pool.acquire() as conn:
            estimate, parts = await self._estimate(conn, columns["num_images_requested"])
            row = await db_sessions.create_session(
                conn,
                user_id=viewer.user_id,
                estimated_cost=estimate,
                metadata={"estimate": parts},
                **columns,
            )
        await self.events.session(row["id"])
        return Outcome(row)

    async def generate_images(self, viewer: Viewer, session_id: uuid.UUID) -> Outcome:
        return await self._start(viewer, session_id, IMAGES)

    async def generate_clips(self, viewer: Viewer, session_id: uuid.UUID) -> Outcome:
        return await self._start(viewer, session_id, CLIPS)

    async def compose(self, viewer: Viewer, session_id: uuid.UUID) -> Outcome:
        return await self._start(viewer, session_id, FINAL)

    async def select(
        self, viewer: Viewer, session_id: uuid.UUID, asset_ids: Sequence[uuid.UUID]
    ) -> Outcome:
        """Approve `asset_ids` (all of one stage's latest run) in this order; reject the
        rest of that run."""
        async with self.pool.acquire() as conn, conn.transaction():
            session = await db_sessions.lock_session(conn, session_id)
            if session is None or not can_change_session(viewer, session):
                return NOT_FOUND
            if not asset_ids:
                return _problem("EMPTY_SELECTION", "select at least one asset", "assetIds")
            if session["status"] not in states.SELECTABLE_IN:
                return _invalid_state(session, "select assets")
            checked = await self._selection(conn, session, asset_ids)
            if isinstance(checked, Outcome):
                return checked
            stage, batch = checked
            changed = await db_assets.approve_in_order(conn, session_id, asset_ids, among=batch)
            approved = "approved_image_ids" if stage is IMAGES else "approved_clip_ids"
            row = await db_sessions.update_session(conn, session_id, **{approved: asset_ids})
        await self.events.session(session_id)
        await self.events.assets(changed)
        return Outcome(row)

    async def cancel(self, viewer: Viewer, session_id: uuid.UUID) -> Outcome:
        """CANCELLED: results that already arrived are kept, the other generating assets
        fail, its running jobs are cancelled (and stopped on their workers); a result
        arriving later changes nothing."""
        async with self.pool.acquire() as conn, conn.transaction():
            session = await db_sessions.lock_session(conn, session_id)
            if session is None or not can_change_session(viewer, session):
                return NOT_FOUND
            if session["status"] not in states.CANCEL_FROM:
                return _invalid_state(session, "be cancelled")
            changed, jobs = await self._stop_generating(conn, session_id, "cancelled")
            row = await db_sessions.set_status(
                conn, session_id, states.CANCELLED, allowed_from=states.CANCEL_FROM
            )
        await self._cancel_jobs(jobs)
        await self.events.session(session_id)
        await self.events.assets(changed)
        return Outcome(row)

    async def delete(self, viewer: Viewer, session_id: uuid.UUID) -> Outcome:
        """Soft delete, in any state; whatever still runs for it is cancelled first."""
        async with self.pool.acquire() as conn, conn.transaction():
            session = await db_sessions.lock_session(conn, session_id)
            if session is None or not can_change_session(viewer, session):
                return NOT_FOUND
            changed, jobs = await self._stop_generating(conn, session_id, "session deleted")
            row = await db_sessions.soft_delete_session(conn, session_id)
        await self._cancel_jobs(jobs)
        await self.events.session(session_id)
        await self.events.assets(changed)
        return Outcome(row)

    # ------------------------------------------------------------ jobs ending

    async def on_job_ended(self, kind: OutputType, row: asyncpg.Record) -> None:
        """JobRunner listener: a job reached a terminal state (or was re-queued). Runs after
        the runner wrote the job's cost row: the final video's is filed as composition."""
        if row["session_id"] is None or row["status"] not in TERMINAL:
            return
        if row["status"] == "completed" and row["workflow_name"] == FINAL.workflow:
            async with self.pool.acquire() as conn:
                await db_costs.set_cost_category(conn, job_id=row["id"], category=COMPOSITION_COST)
        await self.settle(row["session_id"])

    async def on_job_progress(self, kind: OutputType, row: asyncpg.Record, progress: float) -> None:
        """JobRunner progress listener: raise the session's progress from its running stage."""
        session_id = row["session_id"]
        if session_id is None:
            return
        async with self.pool.acquire() as conn:
            session = await db_sessions.get_session(conn, session_id)
            stage = states.RUNNING.get(session["status"]) if session else None
            if session is None or stage is None:
                return
            batch = stage.batch(session)
            if not batch:
                return
            per_job = await db_assets.job_progress_of_assets(conn, batch)
            value = stage.progress(per_job.get(a, 0.0) for a in batch)
            raised = await db_sessions.raise_progress_while(
                conn, session_id, value, status=stage.running
            )
        if raised is not None:
            await self.events.session(session_id, progress_only=True)

    async def settle(self, session_id: uuid.UUID) -> asyncpg.Record | None:
        """Bring a session up to date with its jobs: every generating asset whose job ended
        gets its result; a running stage whose jobs all ended moves on (or fails); progress
        is raised. Returns the session row (None if it is gone)."""
        moved = raised = False
        async with self.pool.acquire() as conn, conn.transaction():
            session = await db_sessions.lock_session(conn, session_id)
            if session is None:
                return None
            changed = await self._settle_assets(conn, session_id)
            stage = states.RUNNING.get(session["status"])
            batch = stage.batch(session) if stage else []
            if stage is not None and batch:
                outcomes = await db_assets.outcomes(conn, batch)
                if outcomes and all(o["status"] != "generating" for o in outcomes):
                    session = await self._finish_stage(conn, session, stage, outcomes)
                    moved = True
                else:
                    per_job = await db_assets.job_progress_of_assets(conn, batch)
                    value = stage.progress(per_job.get(a, 0.0) for a in batch)
                    row = await db_sessions.raise_progress_while(
                        conn, session_id, value, status=stage.running
                    )
                    session, raised = row or session, row is not None
        if moved or raised:
            await self.events.session(session_id, progress_only=not moved)
        await self.events.assets(changed)
        return session

    # ------------------------------------------------------------ internals

    async def _start(self, viewer: Viewer, session_id: uuid.UUID, stage: Stage) -> Outcome:
        allowed = states.START_FROM[stage]
        action = {IMAGES: "generate images", CLIPS: "generate clips", FINAL: "compose a video"}
        template = self.templates.get(stage.workflow)
        if template is None:
            return _problem("UNKNOWN_WORKFLOW", f"workflow {stage.workflow} is not installed")
        async with self.pool.acquire() as conn:
            session = await db_sessions.get_session(conn, session_id)
            if session is None or not can_change_session(viewer, session):
                return NOT_FOUND
            if session["status"] not in allowed:
                return _invalid_state(session, action[stage])
            if stage is IMAGES:
                planned = plan.image_jobs(session, template)
            else:
                inputs = await self._approved_inputs(conn, session, stage)
                if isinstance(inputs, Outcome):
                    return inputs
                if stage is CLIPS:
                    planned = plan.clip_jobs(session, template, inputs)
                else:
                    planned = [plan.compose_job(session, template, inputs)]
        owner = Viewer(user_id=session["user_id"])
        submitted: list[tuple[Planned, Submitted]] = []
        for item in planned:
            result = await submit(
                self.pool,
                self.templates,
                owner,
                item.request,
                events=self.job_events,
                is_allowed_file=self._is_stored,
            )
            if isinstance(result, list):
                await self._cancel_jobs((s.kind, s.row["id"]) for _p, s in submitted)
                return Outcome(problems=result)
            submitted.append((item, result))
        claimed = await self._claim(session_id, stage, submitted)
        if isinstance(claimed, Outcome):
            await self._cancel_jobs((s.kind, s.row["id"]) for _p, s in submitted)
            return claimed
        row, new_assets, rejected = claimed
        if self.wake is not None:
            self.wake()
        await self.events.session(session_id)
        await self.events.assets([*rejected, *new_assets])
        return Outcome(await self.settle(session_id) or row)

    async def _claim(
        self, session_id: uuid.UUID, stage: Stage, submitted: Sequence[tuple[Planned, Submitted]]
    ) -> tuple[asyncpg.Record, list[asyncpg.Record], list[asyncpg.Record]] | Outcome:
        """Under the lock: re-check the state, create the assets, move the status."""
        allowed = states.START_FROM[stage]
        async with self.pool.acquire() as conn, conn.transaction():
            session = await db_sessions.lock_session(conn, session_id)
            if session is None:
                return NOT_FOUND
            if session["status"] not in allowed:
                return _invalid_state(session, "start this stage")
            retry = bool(stage.batch(session))
            rejected = await db_assets.reject_assets(
                conn, session_id, types=states.RESET_TYPES[stage]
            )
            batch = []
            for item, done in submitted:
                columns = {
                    **item.asset,
                    "job_id": done.row["id"],
                    "job_output_type": done.kind.value,
                }
                seed = done.row["parameters"].get("seed")
                if isinstance(seed, int):
                    columns["seed"] = seed
                batch.append(columns)
            assets = await db_assets.create_assets_in_order(
                conn, session_id=session_id, assets=batch
            )
            ids = [a["id"] for a in assets]
            row = await db_sessions.set_status(
                conn,
                session_id,
                stage.running,
                allowed_from=allowed,
                current_stage=stage.name,
                error_message=None,
                retry_count=session["retry_count"] + int(retry),
                **states.RESETS[stage],
                **{stage.batch_column: ids[0] if stage is FINAL else ids},
            )
        return row, assets, rejected

    async def _approved_inputs(
        self, conn: asyncpg.Connection, session: asyncpg.Record, stage: Stage
    ) -> list[asyncpg.Record] | Outcome:
        """The approved assets a stage starts from (images for clips, clips for the final
        video), in mood-board order; NOTHING_APPROVED when there are none."""
        column = "approved_image_ids" if stage is CLIPS else "approved_clip_ids"
        wanted = IMAGES.asset_type if stage is CLIPS else CLIPS.asset_type
        ids = list(session[column] or [])
        rows = await db_assets.assets_by_ids(conn, ids)
        approved = [
            rows[i]
            for i in ids
            if i in rows and rows[i]["status"] == "approved" and rows[i]["type"] == wanted
        ]
        if not approved:
            noun = "images" if stage is CLIPS else "clips"
            return _problem("NOTHING_APPROVED", f"approve {noun} first (selectAssets)", "sessionId")
        return approved

    async def _selection(
        self, conn: asyncpg.Connection, session: asyncpg.Record, asset_ids: Sequence[uuid.UUID]
    ) -> tuple[Stage, list[uuid.UUID]] | Outcome:
        """Check a selection: every id an asset of this session (NOT_FOUND otherwise, as for
        an id that does not exist), no duplicates, one stage, allowed in the session's
        state, each successfully generated in that stage's latest run."""
        problems = []
        seen: set[uuid.UUID] = set()
        rows = await db_assets.assets_by_ids(conn, asset_ids)
        for index, asset_id in enumerate(asset_ids):
            row = rows.get(asset_id)
            if row is None or row["session_id"] != session["id"]:
                problems.append(
                    Problem("NOT_FOUND", "no asset with this id in this session",
                            ("assetIds", str(index)))
                )  # fmt: skip
            elif asset_id in seen:
                problems.append(
                    Problem("DUPLICATE_ASSET", "an asset may be selected once",
                            ("assetIds", str(index)))
                )  # fmt: skip
            seen.add(asset_id)
        if problems:
            return Outcome(problems=problems)
        types = {rows[a]["type"] for a in asset_ids}
        if len(types) > 1:
            return _problem(
                "MIXED_STAGES", "select the assets of one stage at a time (images or clips)",
                "assetIds",
            )  # fmt: skip
        asset_type = types.pop()
        stage = {IMAGES.asset_type: IMAGES, CLIPS.asset_type: CLIPS}.get(asset_type)
        if stage is None:
            return _problem("NOT_SELECTABLE", f"{asset_type} assets are not selected",
                            "assetIds")  # fmt: skip
        if session["status"] not in states.SELECT_IN[asset_type]:
            return _invalid_state(session, f"select {asset_type.replace('_', ' ')}s")
        batch = stage.batch(session)
        for index, asset_id in enumerate(asset_ids):
            row = rows[asset_id]
            if asset_id not in batch:
                reason = "it is from an earlier run of this stage"
            elif row["status"] not in states.GENERATED:
                reason = f"it is {row['status']}"
            else:
                continue
            problems.append(
                Problem("NOT_SELECTABLE", f"this asset cannot be selected: {reason}",
                        ("assetIds", str(index)))
            )  # fmt: skip
        if problems:
            return Outcome(problems=problems)
        return stage, batch

    async def _settle_assets(
        self, conn: asyncpg.Connection, session_id: uuid.UUID
    ) -> list[asyncpg.Record]:
        changed = []
        for job in await db_assets.finished_jobs_of_generating_assets(conn, session_id):
            result = plan.asset_result(job["type"], job, self._storage_key)
            row = await db_assets.settle_asset(
                conn, job["asset_id"], error=result.error, **result.columns
            )
            if row is None:
                continue
            changed.append(row)
            if row["status"] == "completed":
                await db_costs.link_cost_to_asset(conn, job_id=job["job_id"], asset_id=row["id"])
        return changed

    async def _finish_stage(
        self,
        conn: asyncpg.Connection,
        session: asyncpg.Record,
        stage: Stage,
        outcomes: Sequence[asyncpg.Record],
    ) -> asyncpg.Record:
        """Every job of the stage ended: on to its review state (completed for the final
        video) if at least one succeeded, else FAILED with the reason."""
        succeeded = sum(1 for o in outcomes if o["status"] in states.GENERATED)
        if succeeded:
            columns: dict[str, Any] = {
                "progress_percentage": max(session["progress_percentage"], stage.end)
            }
            if stage is FINAL:
                columns["completed_at"] = datetime.now(UTC)
            return await db_sessions.set_status(
                conn, session["id"], stage.done, allowed_from=(stage.running,), **columns
            )
        reasons = [o["error"] for o in outcomes if o["error"]]
        message = f"all {len(outcomes)} {stage.noun} failed"
        if reasons:
            message += f": {reasons[0]}"
        return await db_sessions.set_status(
            conn, session["id"], states.FAILED, allowed_from=(stage.running,),
            error_message=message[:2000],
        )  # fmt: skip

    async def _stop_generating(
        self, conn: asyncpg.Connection, session_id: uuid.UUID, reason: str
    ) -> tuple[list[asyncpg.Record], set[JobRef]]:
        """Keep what already finished, fail the other generating assets; returns the
        changed assets and the jobs that still run for the session."""
        settled = await self._settle_assets(conn, session_id)
        failed = await db_assets.fail_generating_assets(conn, session_id, reason=reason)
        jobs = {(OutputType(a["job_output_type"]), a["job_id"]) for a in failed if a["job_id"]}
        jobs.update(await db_sessions.active_session_jobs(conn, session_id))
        return [*settled, *failed], jobs

    async def _cancel_jobs(self, jobs: Iterable[JobRef]) -> None:
        for kind, job_id in jobs:
            try:
                await cancel_job(
                    self.pool, kind, job_id, workers=self.workers, events=self.job_events
                )
            except (IllegalTransition, NotFound):
                pass  # it ended meanwhile: its late result is ignored by settle

    async def _estimate(
        self, conn: asyncpg.Connection, images: int
    ) -> tuple[Decimal | None, dict[str, float | None]]:
        """Every stage's runs (images and clips: numImagesRequested each, the most a
        session makes; compose once) x its estimated cost per run (studio/sessions/
        estimate.py). Null when nothing gives an estimate."""
        runs = {IMAGES.workflow: images, CLIPS.workflow: images, FINAL.workflow: 1}
        kinds, hints = [], {}
        for name in runs:
            template = self.templates.get(name)
            if template is not None:
                kinds.append((OutputType(template.output_type.lower()), name))
                hints[name] = template.estimated_seconds
        averages = await db_costs.average_job_costs(conn, kinds, recent=ESTIMATE_RECENT)
        costs = per_run_costs(averages, hints, self._mean_price())
        parts = {name: None if cost is None else float(cost) for name, cost in costs.items()}
        return session_estimate(runs, costs), parts

    def _mean_price(self) -> float | None:
        prices = [
            w.price_per_hour
            for w in (self.workers.workers.values() if self.workers else ())
            if w.price_per_hour is not None
        ]
        return sum(prices) / len(prices) if prices else None

    def _is_stored(self, url: str) -> bool:
        return self.store is not None and self.store.key_for_url(url) is not None

    async def _may_use(self, viewer: Viewer, url: str) -> bool:
        """The viewer's own upload (or a file of a job they may see) that exists."""
        key = self._storage_key(url)
        if key is None or self.store is None:
            return False
        async with self.pool.acquire() as conn:
            return await may_use(conn, self.store, viewer, key)

    def _storage_key(self, url: str) -> str | None:
        return None if self.store is None else self.store.key_for_url(url)
