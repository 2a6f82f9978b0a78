"""The legacy import: stream each legacy table out of its snapshot, map it, write it.

    source (READ ONLY snapshot) --cursor--> fingerprint --queue--> classify, then map
    and ask workers about new/changed rows only --queue--> COPY new rows / UPDATE
    changed rows  (one target transaction)

Reading, mapping and writing run concurrently, joined by queues of at most two
batches, so memory does not grow with the number of rows. The whole import is one
transaction on the target: the count check runs before COMMIT, and an import whose
counts do not add up is rolled back, leaving the job tables as they were.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any, Protocol

import asyncpg
import orjson

from comfygraph.db.kinds import OutputType
from comfygraph.db.legacy import source as src
from comfygraph.db.legacy import target as tgt
from comfygraph.db.legacy.errors import LegacyImportError
from comfygraph.db.legacy.mapping import (
    MapContext,
    Mapped,
    Verdict,
    fingerprint,
    map_row,
    record,
    settle,
)
from comfygraph.db.legacy.tables import LegacyTable

Probe = Callable[[str, str], Awaitable[Verdict]]
SkipHandler = Callable[[str, str, str], None]  # (table, legacy id, reason)


class Progress(Protocol):
    def start(self, table: str, total: int) -> None: ...
    def advance(self, table: str, rows: int) -> None: ...
    def finish(self, table: str) -> None: ...


class NoProgress:
    def start(self, table: str, total: int) -> None:
        pass

    def advance(self, table: str, rows: int) -> None:
        pass

    def finish(self, table: str) -> None:
        pass


@dataclass
class ImportOptions:
    dry_run: bool = False
    schema: str = "public"
    source_tz: tzinfo = UTC
    comfy_url: str | None = None
    workflow_map: dict[str, str] = field(default_factory=dict)
    batch_size: int = 2000


@dataclass
class TableReport:
    """Per source table. read = imported + updated + unchanged + skipped."""

    source: str
    total: int = 0  # rows in the snapshot (count(*))
    read: int = 0
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    kept: int = 0  # of unchanged: changed at the source, but this server owns the row now
    # What the import wrote (would write): target table -> [new, updated].
    targets: dict[str, list[int]] = field(default_factory=dict)
    guesses: int = 0  # written rows whose workflow was inferred
    unknown_status: int = 0
    adopted: int = 0
    lost: int = 0
    before: int = 0  # rows from this source in the job tables before the run
    after: int = 0
    stale: int = 0  # imported earlier, no longer at the source (left in place)
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    unmapped_ids: int = 0  # workflow-map ids never met

    def target(self, table: str) -> list[int]:
        return self.targets.setdefault(table, [0, 0])


@dataclass
class ImportReport:
    tables: list[TableReport]
    dry_run: bool
    committed: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and all(not t.problems for t in self.tables)


def _parse_row(text: str) -> tuple[dict[str, Any], Any]:
    """A row_to_json text: (the row, what parameters.legacy.row keeps of it).

    The text itself is kept (embedded as is, not re-encoded) unless jsonb would refuse
    it: json columns may hold \\u0000 or lone surrogates, and such rows are cleaned."""
    if "\\u0000" not in text:
        try:
            parsed: dict[str, Any] = orjson.loads(text)
            return parsed, orjson.Fragment(text)
        except orjson.JSONDecodeError:
            pass
    cleaned = _scrub(json.loads(text))
    return cleaned, cleaned


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        cleaned = value.replace("\x00", "\ufffd")
        return cleaned.encode("utf-8", "replace").decode("utf-8")  # lone surrogates
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, dict):
        return {_scrub(k): _scrub(v) for k, v in value.items()}
    return value


@dataclass(slots=True)
class _Raw:
    legacy_id: str
    keyed: bool
    text: str  # row_to_json
    fp: str


_Item = tuple[Mapped, tuple[Any, ...]]  # a mapped row and its COPY record


@dataclass
class _Plan:
    """What one batch needs written, by job table."""

    rows: int
    inserts: dict[OutputType, list[_Item]] = field(default_factory=dict)
    updates: dict[OutputType, list[_Item]] = field(default_factory=dict)
    moves: dict[OutputType, list[_Item]] = field(default_factory=dict)  # by the table left


class _Run:
    def __init__(
        self,
        source: asyncpg.Connection,
        target: asyncpg.Connection,
        options: ImportOptions,
        probe: Probe,
        progress: Progress,
        on_skip: SkipHandler | None,
        classifier: asyncpg.Connection | None = None,
    ) -> None:
        self.source, self.target, self.options = source, target, options
        self.classifier = classifier
        self.probe, self.progress, self.on_skip = probe, progress, on_skip
        self.ctx = MapContext(
            now=datetime.now(UTC),
            tz=options.source_tz,
            comfy_url=options.comfy_url.rstrip("/") if options.comfy_url else None,
            workflow_map=options.workflow_map,
        )
        self.map_ids_met: set[str] = set()

    # ------------------------------------------------------------ stage 1: read
    def _raw_batch(self, table: src.SourceTable, rows: list[src.SourceRow],
                   ordinal: list[Any]) -> list[_Raw]:  # fmt: skip
        out = []
        for legacy_id, text, identity in rows:
            keyed = legacy_id is not None
            if legacy_id is None:
                # Keyless: named by the hash of its identity columns, numbered among equals.
                ordinal[1] = ordinal[1] + 1 if ordinal[0] == identity else 1
                ordinal[0] = identity
                legacy_id = f"nokey:{identity}:{ordinal[1]}"
            out.append(
                _Raw(legacy_id, keyed, text, fingerprint(table.spec, text, legacy_id, self.ctx))
            )
        return out

    async def _read(self, table: src.SourceTable, out: asyncio.Queue[Any]) -> None:
        ordinal: list[Any] = [None, 0]
        async for rows in src.stream(self.source, table, batch_size=self.options.batch_size):
            await out.put(self._raw_batch(table, rows, ordinal))
        await out.put(None)

    # ------------------------------------------------------------ stage 2: plan
    async def _plan(self, table: src.SourceTable, rep: TableReport, inq: asyncio.Queue[Any],
                    out: asyncio.Queue[Any], lock: asyncio.Lock) -> None:  # fmt: skip
        """Classify a batch against the job tables, then map (and ask workers about)
        only the rows that are new or changed: a re-run of an unchanged source maps
        nothing. Mapping here overlaps with the writer's COPY of the batch before."""
        spec = table.spec
        dedupe, lookup = not table.unique_key, rep.before > 0
        while (batch := await inq.get()) is not None:
            ids = [r.legacy_id for r in batch]
            existing: dict[str, tgt.Existing]
            if not (dedupe or lookup):  # a first import of a uniquely keyed table
                fresh, existing = set(ids), {}
            elif self.classifier is not None:  # its own connection: no waiting on writes
                fresh, existing = await tgt.classify(
                    self.classifier, spec.name, ids, spec.kinds, dedupe=dedupe, lookup=lookup
                )
            else:  # the connection the writer uses, one statement at a time
                async with lock:
                    fresh, existing = await tgt.classify(
                        self.target, spec.name, ids, spec.kinds, dedupe=dedupe, lookup=lookup
                    )
            todo: list[tuple[_Raw, tgt.Existing | None]] = []
            taken: set[str] = set()
            for raw in batch:
                rep.read += 1
                if raw.legacy_id not in fresh or raw.legacy_id in taken:
                    rep.skipped += 1
                    self._skip(spec, raw.legacy_id, f"duplicate {_key_name(spec)}: an earlier"
                               " row with the same key was imported")  # fmt: skip
                    continue
                taken.add(raw.legacy_id)
                if raw.legacy_id in self.options.workflow_map:
                    self.map_ids_met.add(raw.legacy_id)
                found = existing.get(raw.legacy_id)
                if found is not None and found.fingerprint == raw.fp:
                    rep.unchanged += 1
                elif found is not None and not found.owned:
                    rep.unchanged += 1
                    rep.kept += 1
                else:
                    todo.append((raw, found))
            mapped = [(self._map(spec, raw), found) for raw, found in todo]
            await self._ask_workers([m for m, _ in mapped])
            plan = _Plan(len(batch))
            for m, found in mapped:
                item = (m, () if self.options.dry_run else record(m))
                if found is None:
                    plan.inserts.setdefault(m.kind, []).append(item)
                elif found.kind is m.kind:
                    plan.updates.setdefault(m.kind, []).append(item)
                else:  # its workflow now puts it in another table
                    plan.moves.setdefault(found.kind, []).append(item)
            await out.put(plan)
        await out.put(None)

    def _map(self, spec: LegacyTable, raw: _Raw) -> Mapped:
        row, kept = _parse_row(raw.text)
        m = map_row(spec, row, raw.legacy_id, keyed=raw.keyed, fp=raw.fp, ctx=self.ctx)
        m.legacy["row"] = kept
        return m

    async def _ask_workers(self, rows: Sequence[Mapped]) -> None:
        flying = [m for m in rows if m.in_flight]
        asks = [m for m in flying if m.ask is not None]
        verdicts = await asyncio.gather(*(self.probe(*m.ask) for m in asks if m.ask))
        answers = {id(m): v for m, v in zip(asks, verdicts, strict=True)}
        for m in flying:
            settle(m, answers.get(id(m)), self.ctx)

    # ------------------------------------------------------------ stage 3: write
    async def _write(self, table: src.SourceTable, rep: TableReport, inq: asyncio.Queue[Any],
                     lock: asyncio.Lock) -> None:  # fmt: skip
        name, target, dry_run = table.name, self.target, self.options.dry_run
        while (plan := await inq.get()) is not None:
            async with lock:
                moved: dict[OutputType, list[_Item]] = {}
                for old_kind, items in plan.moves.items():
                    gone = set() if dry_run else await tgt.delete_moved(
                        target, old_kind, name, [m.legacy_id for m, _ in items]
                    )  # fmt: skip
                    for item in items:
                        if dry_run or item[0].legacy_id in gone:
                            moved.setdefault(item[0].kind, []).append(item)
                        else:  # a replica took it over since the plan
                            rep.unchanged += 1
                            rep.kept += 1
                for kind in (k for k in OutputType if {k} & {*plan.inserts, *plan.updates, *moved}):
                    new, moves = plan.inserts.get(kind, []), moved.get(kind, [])
                    updates = plan.updates.get(kind, [])
                    if not dry_run:
                        await tgt.insert_rows(target, kind, [r for _, r in new + moves])
                        done = await tgt.update_rows(target, kind, [r for _, r in updates])
                        rep.unchanged += len(updates) - len(done)
                        rep.kept += len(updates) - len(done)
                        updates = [item for item in updates if item[0].legacy_id in done]
                    rep.imported += len(new)
                    rep.updated += len(updates) + len(moves)
                    counts = rep.target(kind.table)
                    counts[0] += len(new)
                    counts[1] += len(updates) + len(moves)
                    for m, _ in (*new, *moves, *updates):
                        self._tally(m, rep)
            self.progress.advance(name, plan.rows)

    def _tally(self, m: Mapped, rep: TableReport) -> None:
        legacy = m.legacy
        rep.guesses += bool(legacy.get("workflow_guess"))
        if m.values["status"] == "processing":
            rep.adopted += 1
        elif "worker" in legacy:
            rep.lost += 1
        message = m.values.get("error_message") or ""
        rep.unknown_status += message.startswith("legacy status")

    def _skip(self, spec: LegacyTable, legacy_id: str, reason: str) -> None:
        if self.on_skip is not None:
            self.on_skip(spec.name, legacy_id, reason)

    async def import_table(self, table: src.SourceTable, rep: TableReport) -> None:
        """Three stages joined by queues of at most two batches: read (source), plan
        (classify, map, ask workers), write (target). The target connection is shared by
        plan and write, one statement at a time."""
        raw: asyncio.Queue[Any] = asyncio.Queue(maxsize=2)
        plans: asyncio.Queue[Any] = asyncio.Queue(maxsize=2)
        lock = asyncio.Lock()
        self.progress.start(table.name, rep.total)
        try:
            await _all_or_none(
                self._read(table, raw),
                self._plan(table, rep, raw, plans, lock),
                self._write(table, rep, plans, lock),
            )
        finally:
            self.progress.finish(table.name)


async def _all_or_none(*stages: Coroutine[Any, Any, None]) -> None:
    """Run the stages together; the first to fail cancels the others and is raised."""
    tasks = [asyncio.create_task(stage) for stage in stages]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _key_name(spec: LegacyTable) -> str:
    return spec.key or "key"


async def _check(run: _Run, tables: Sequence[src.SourceTable], report: ImportReport) -> None:
    """The count check (seed 002's, made exact), run before COMMIT."""
    for table, rep in zip(tables, report.tables, strict=True):
        kinds = table.spec.kinds
        accounted = rep.imported + rep.updated + rep.unchanged + rep.skipped
        if rep.read != rep.total:
            rep.problems.append(f"read {rep.read} rows but the snapshot holds {rep.total}")
        if accounted != rep.read:
            rep.problems.append(f"{accounted} rows accounted for, {rep.read} read")
        rep.after = await tgt.count_imported(run.target, table.name, kinds)
        expected = rep.before + rep.imported
        if not report.dry_run and rep.after != expected:
            rep.problems.append(f"the job tables hold {rep.after} of its rows, expected {expected}")
        rep.stale = expected - (rep.read - rep.skipped)
        if rep.stale < 0:
            rep.problems.append(f"{-rep.stale} rows read are missing from the job tables")
        twice = await tgt.count_in_two_tables(run.target, table.name, kinds)
        if twice:
            rep.problems.append(f"{twice} of its rows are in two job tables")
        if run.options.workflow_map and table.spec.name == "multitalk_jobs":
            rep.unmapped_ids = len(set(run.options.workflow_map) - run.map_ids_met)
    pending = await tgt.count_pending(run.target)
    if pending:
        report.problems.append(f"{pending} imported rows are pending and would be dispatched")


async def import_legacy(
    source: asyncpg.Connection,
    target: asyncpg.Connection,
    tables: Sequence[LegacyTable],
    options: ImportOptions,
    *,
    probe: Probe,
    progress: Progress | None = None,
    on_skip: SkipHandler | None = None,
    classifier: asyncpg.Connection | None = None,
) -> ImportReport:
    """Import `tables` from `source` into the job tables of `target`.

    Everything about the source is checked (tables, columns, privileges, counts)
    before the target is touched. A dry run reads the target in a READ ONLY
    transaction and writes only to its own temp tables. A real run commits only
    when the count check passes; otherwise it rolls back and the report says why.

    `classifier`, a second connection to the target, lets batches be classified (is
    this row new, changed, a duplicate?) while the one before is written. It reads
    in a READ ONLY transaction: only rows committed by earlier runs matter to it, as
    each legacy id is classified once per run.
    """
    run = _Run(source, target, options, probe, progress or NoProgress(), on_skip, classifier)
    snapshot = source.transaction(isolation="repeatable_read", readonly=True)
    await snapshot.start()
    try:
        try:
            found = await src.discover(source, options.schema, tables)
            reports = []
            for table in found:
                rep = TableReport(table.name, total=await src.count_rows(source, table))
                if table.missing:
                    rep.warnings.append(f"no column {', '.join(table.missing)}: read as NULL")
                if table.extra:
                    rep.warnings.append(
                        f"unexpected column {', '.join(table.extra)}: kept in parameters.legacy.row"
                    )
                if not table.key_columns:
                    rep.warnings.append("no key: rows are named by a hash of their content")
                reports.append(rep)
        except asyncpg.PostgresError as exc:
            raise LegacyImportError(f"legacy source: {exc}") from exc
        report = ImportReport(reports, dry_run=options.dry_run)
        await _import(run, found, report)
        return report
    finally:
        with contextlib.suppress(Exception):  # read only: nothing to undo, the snapshot ends
            await snapshot.rollback()


async def _import(run: _Run, found: Sequence[src.SourceTable], report: ImportReport) -> None:
    target, dry_run, classifier = run.target, run.options.dry_run, run.classifier
    kinds = {k for t in found for k in t.spec.kinds}
    await tgt.acquire_lock(target)
    try:
        await tgt.create_scratch(target, kinds, stages=not dry_run)
        if classifier is not None:
            await tgt.create_scratch(classifier, (), stages=False)
            await classifier.execute("BEGIN TRANSACTION READ ONLY")
        tx = target.transaction(readonly=dry_run)
        await tx.start()
        try:
            # The job tables grow during the run: plan every statement for the table
            # as it is now, not with a generic plan made while it was empty.
            await target.execute("SET LOCAL plan_cache_mode = force_custom_plan")
            for table, rep in zip(found, report.tables, strict=True):
                rep.before = await tgt.count_imported(target, table.name, table.spec.kinds)
                try:
                    await run.import_table(table, rep)
                except asyncpg.PostgresError as exc:
                    raise LegacyImportError(f"{table.name}: {exc}") from exc
            await _check(run, found, report)
        except BaseException:
            with contextlib.suppress(Exception):  # a broken connection has rolled back
                await tx.rollback()
            raise
        if dry_run or not report.ok:
            await tx.rollback()
        else:
            await tx.commit()
            report.committed = True
    finally:
        if classifier is not None:
            with contextlib.suppress(Exception):
                await classifier.execute("ROLLBACK")
                await tgt.drop_scratch(classifier)
        with contextlib.suppress(Exception):  # closing the connection releases both anyway
            await tgt.drop_scratch(target)
            await tgt.release_lock(target)


async def rollback_legacy(
    target: asyncpg.Connection, tables: Sequence[LegacyTable], *, dry_run: bool
) -> list[tgt.Removed]:
    """Delete exactly the rows imports created from `tables` (one transaction)."""
    await tgt.acquire_lock(target)
    try:
        async with target.transaction(readonly=dry_run):
            return await tgt.remove_imported(target, [t.name for t in tables], dry_run=dry_run)
    finally:
        await tgt.release_lock(target)
