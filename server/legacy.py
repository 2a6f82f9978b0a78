"""`comfygraph import-legacy`: the glue around db.legacy.

    comfygraph import-legacy --source postgresql://ro@legacy-db/app [--dry-run]
        [--workflow-map map.csv] [--comfy-url http://comfy:8188] [--tables a,b]
        [--source-schema public] [--source-timezone UTC] [--worker-timeout 5]
    comfygraph import-legacy --rollback [--dry-run] [--tables a,b]

Opens the legacy source (a read-only session and a READ ONLY, REPEATABLE READ
snapshot) and the configured database (DATABASE_URL or embedded, migrated like every
command), asks in-flight legacy jobs' ComfyUI workers whether they still know them,
shows a progress bar per table (rich on a terminal, log lines otherwise) and prints the
per-table count check: read = imported + updated + unchanged + skipped, and the job
tables hold exactly the rows read (minus skipped ones). The import is one transaction:
it commits only when the check passes.

- All four tables are imported unless --tables names some; a table missing at the
  source is an error (nothing is written) unless --tables leaves it out.
- A re-run imports nothing twice: rows whose source (or mapping options) changed are
  updated, unless this server has since taken them over (then they are kept).
- --dry-run writes nothing (the target is read in a READ ONLY transaction) and prints
  what would be written, per table and job table, and every row it would skip.
- --rollback deletes exactly the rows imports created (legacy_source/legacy_id set).
- Exit status 0 on success; 1 with one `error: ...` line otherwise.
"""

from __future__ import annotations

import asyncio
import csv
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg
import httpx

from comfygraph.comfy.client import ComfyClient
from comfygraph.comfy.errors import ComfyError, ProtocolError, WorkerUnavailable
from comfygraph.comfy.messages import Queue
from comfygraph.db.legacy import (
    MULTITALK_WORKFLOWS,
    ImportOptions,
    ImportReport,
    LegacyImportError,
    LegacyTable,
    Progress,
    Removed,
    Verdict,
    import_legacy,
    parse_tables,
    rollback_legacy,
)
from comfygraph.db.legacy.source import discover
from comfygraph.db.migrate import apply_migrations, pending_migrations
from comfygraph.server.database import check_reachable, describe, resolve_dsn
from comfygraph.server.settings import Settings

logger = logging.getLogger("comfygraph.legacy")
APPLICATION_NAME = "comfygraph import-legacy"


@dataclass(frozen=True)
class LegacyCommand:
    source: str | None = None
    dry_run: bool = False
    rollback: bool = False
    workflow_map: Path | None = None
    comfy_url: str | None = None
    tables: str | None = None
    source_schema: str = "public"
    source_timezone: str = "UTC"
    worker_timeout: float = 5.0
    batch_size: int = 2000


# --------------------------------------------------------------------------- inputs


def load_workflow_map(path: Path) -> dict[str, str]:
    """A CSV of `legacy_id,workflow` lines for multitalk_jobs rows (a header line, blank
    lines and lines starting with # are ignored). Every workflow must be one a
    multitalk row can be; one id may not name two workflows."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise LegacyImportError(f"cannot read the workflow map {path}: {exc}") from exc
    found: dict[str, str] = {}
    for number, fields in enumerate(csv.reader(text.splitlines()), start=1):
        if not fields or not "".join(fields).strip() or fields[0].lstrip().startswith("#"):
            continue
        if len(fields) != 2:
            raise LegacyImportError(f"{path}:{number}: expected legacy_id,workflow")
        legacy_id, workflow = fields[0].strip(), fields[1].strip()
        if number == 1 and (legacy_id.lower(), workflow.lower()) == ("legacy_id", "workflow"):
            continue
        if workflow not in MULTITALK_WORKFLOWS:
            raise LegacyImportError(
                f"{path}:{number}: unknown workflow {workflow!r}"
                f" (choose from {', '.join(MULTITALK_WORKFLOWS)})"
            )
        if found.get(legacy_id, workflow) != workflow:
            raise LegacyImportError(f"{path}:{number}: {legacy_id!r} is mapped twice")
        found[legacy_id] = workflow
    return found


def _http_url(value: str, what: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise LegacyImportError(f"{what} must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


def _options(cmd: LegacyCommand) -> ImportOptions:
    try:
        tz = ZoneInfo(cmd.source_timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise LegacyImportError(f"unknown time zone {cmd.source_timezone!r}") from exc
    return ImportOptions(
        dry_run=cmd.dry_run,
        schema=cmd.source_schema,
        source_tz=tz,
        comfy_url=_http_url(cmd.comfy_url, "--comfy-url") if cmd.comfy_url else None,
        workflow_map=load_workflow_map(cmd.workflow_map) if cmd.workflow_map else {},
        batch_size=cmd.batch_size,
    )


# --------------------------------------------------------------------------- workers


class WorkerProbe:
    """Asks a legacy job's ComfyUI worker whether it still knows the job.

    GET /queue, once per worker and run (running or pending there: known), then
    GET /history/{prompt_id} (finished: known; `{}` means unknown), through the one
    ComfyUI client (comfy/client). A job in the source snapshot was queued before the
    queue was read, so it is in that queue or has finished into /history by the time
    it is asked about. A worker that cannot be reached or answers nonsense knows
    nothing, and is not asked again this run.
    """

    def __init__(self, client: httpx.AsyncClient, *, concurrency: int = 8) -> None:
        self._http = client
        self._slots = asyncio.Semaphore(concurrency)
        self._clients: dict[str, ComfyClient] = {}
        self._queues: dict[str, Queue | str] = {}  # worker -> its queue, or why it is dead
        self._locks: dict[str, asyncio.Lock] = {}
        self.adopting: set[str] = set()  # workers that still know some legacy job

    def _comfy(self, base: str) -> ComfyClient:
        if base not in self._clients:
            timeout = self._http.timeout
            self._clients[base] = ComfyClient(
                base,
                http=self._http,
                timeout=timeout.read or 10.0,
                connect_timeout=timeout.connect or 3.0,
            )
        return self._clients[base]

    async def _queue(self, base: str) -> Queue | str:
        async with self._locks.setdefault(base, asyncio.Lock()):
            if base not in self._queues:
                try:
                    async with self._slots:
                        self._queues[base] = await self._comfy(base).queue()
                except ComfyError as exc:
                    self._queues[base] = _reason(exc)
            return self._queues[base]

    async def __call__(self, comfy_url: str, prompt_id: str) -> Verdict:
        base = comfy_url.rstrip("/")
        if urlsplit(base).scheme not in ("http", "https"):
            return Verdict(False, f"worker URL {comfy_url!r} is not http(s)")
        queue = await self._queue(base)
        if isinstance(queue, str):
            return Verdict(False, f"worker {base} could not be reached ({queue})")
        if queue.is_running(prompt_id):
            self.adopting.add(base)
            return Verdict(True, f"worker {base} is running it")
        if prompt_id in queue:
            self.adopting.add(base)
            return Verdict(True, f"worker {base} has it queued")
        try:
            async with self._slots:
                entry = await self._comfy(base).history(prompt_id)
        except WorkerUnavailable as exc:
            self._queues[base] = _reason(exc)
            return Verdict(False, f"worker {base} could not be reached ({_reason(exc)})")
        except ProtocolError:
            entry = None  # an answer that names no entry for it: it does not know the job
        if entry is not None:
            self.adopting.add(base)
            return Verdict(True, f"worker {base} has finished it (in /history)")
        return Verdict(False, f"worker {base} no longer knows ComfyUI job {prompt_id}")


def _reason(exc: ComfyError) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --------------------------------------------------------------------------- progress


class BarProgress:
    """A rich progress bar per table. With stdout on the terminal, the bars and the
    printed lines share one console (lines appear above the bars); otherwise the bars
    go to stderr and the lines to stdout untouched."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as Bars

        self._echo = echo
        self._shared = sys.stdout.isatty()
        self._bars = Bars(
            TextColumn("{task.description:<16}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn(),
            console=Console(stderr=not self._shared), redirect_stdout=False,
            redirect_stderr=False,
        )  # fmt: skip
        self._tasks: dict[str, Any] = {}

    def line(self, text: str) -> None:
        if self._shared:
            self._bars.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            self._echo(text)

    @contextmanager
    def shown(self) -> Iterator[BarProgress]:
        with self._bars:
            yield self

    def start(self, table: str, total: int) -> None:
        self._tasks[table] = self._bars.add_task(table, total=total)

    def advance(self, table: str, rows: int) -> None:
        self._bars.advance(self._tasks[table], rows)

    def finish(self, table: str) -> None:
        self._bars.refresh()


class LogProgress:
    """Plain log lines (not a terminal): at most one per table every `every` seconds."""

    def __init__(self, echo: Callable[[str], None], every: float = 5.0) -> None:
        self.line = echo
        self._every = every
        self._state: dict[str, list[float]] = {}  # table -> [total, done, started, last]

    @contextmanager
    def shown(self) -> Iterator[LogProgress]:
        yield self

    def start(self, table: str, total: int) -> None:
        now = time.monotonic()
        self._state[table] = [total, 0, now, now]
        logger.info("%s: %d rows to read", table, total)

    def advance(self, table: str, rows: int) -> None:
        state = self._state[table]
        state[1] += rows
        if time.monotonic() - state[3] >= self._every:
            state[3] = time.monotonic()
            pct = 100 * state[1] / state[0] if state[0] else 100
            logger.info("%s: %d/%d rows (%.0f%%)", table, state[1], state[0], pct)

    def finish(self, table: str) -> None:
        total, done, started, _ = self._state[table]
        logger.info("%s: %d/%d rows in %.1f s", table, done, total, time.monotonic() - started)


# --------------------------------------------------------------------------- report


def format_report(report: ImportReport) -> list[str]:
    head = ("source", "read", "imported", "updated", "unchanged", "skipped", "check")
    lines = ["{:<16} {:>9} {:>9} {:>9} {:>9} {:>9}  {}".format(*head)]
    for t in report.tables:
        check = "ok" if not t.problems else "FAILED"
        lines.append(
            f"{t.source:<16} {t.read:>9} {t.imported:>9} {t.updated:>9} {t.unchanged:>9}"
            f" {t.skipped:>9}  {check}"
        )
        verb = "would write" if report.dry_run else "wrote"
        if t.targets:
            parts = [f"{name}: {n} new, {u} updated" for name, (n, u) in t.targets.items()]
            lines.append(f"  {verb} {'; '.join(parts)}")
        facts = [
            f"{t.guesses} workflow guesses" if t.guesses else "",
            f"{t.adopted} adopted (still known to their worker)" if t.adopted else "",
            f"{t.lost} lost during migration" if t.lost else "",
            f"{t.unknown_status} with an unknown status (failed)" if t.unknown_status else "",
            f"{t.kept} changed at the source but taken over by this server (kept)"
            if t.kept
            else "",
            f"{t.stale} imported earlier but gone from the source (left)" if t.stale else "",
            f"{t.unmapped_ids} workflow-map ids not found" if t.unmapped_ids else "",
        ]
        if any(facts):
            lines.append("  " + ", ".join(f for f in facts if f))
        lines += [f"  note: {w}" for w in t.warnings]
        lines += [f"  problem: {p}" for p in t.problems]
    lines += [f"problem: {p}" for p in report.problems]
    return lines


# --------------------------------------------------------------------------- command


async def open_source(dsn: str, *, connect_timeout: float) -> asyncpg.Connection:
    """The legacy database, read only for the whole session."""
    if urlsplit(dsn).scheme not in ("postgres", "postgresql"):
        raise LegacyImportError("--source must be a postgresql:// URL")
    where = f"{describe(dsn)}{urlsplit(dsn).path}"
    # Read only for the whole session, and no role-level timeouts: the snapshot must
    # survive a long import (it waits, idle in transaction, while batches are written).
    settings = {"application_name": APPLICATION_NAME, "TimeZone": "UTC",
                "default_transaction_read_only": "on", "statement_timeout": "0",
                "idle_in_transaction_session_timeout": "0"}  # fmt: skip
    try:
        async with asyncio.timeout(connect_timeout + 1):
            conn = await asyncpg.connect(dsn, timeout=connect_timeout, server_settings=settings)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise LegacyImportError(f"cannot reach the legacy source at {where}: {reason}") from exc
    return conn


async def open_target(settings: Settings, *, migrate: bool) -> asyncpg.Connection:
    """The configured database (DATABASE_URL or embedded). Plain asyncpg codecs: jsonb
    travels as text, which binary COPY needs."""
    conn = await _connect_target(settings)
    try:
        if migrate:
            await apply_migrations(conn)
        elif await pending_migrations(conn):
            raise LegacyImportError(
                "the database is not migrated; run `comfygraph migrate` before a dry run"
            )
    except BaseException:
        await conn.close()
        raise
    return conn


async def _connect_target(settings: Settings) -> asyncpg.Connection:
    dsn = await asyncio.to_thread(resolve_dsn, settings)
    await check_reachable(dsn, connect_timeout=settings.db_connect_timeout)
    return await asyncpg.connect(
        dsn, timeout=settings.db_connect_timeout,
        server_settings={"application_name": APPLICATION_NAME, "temp_buffers": "64MB",
                         "idle_in_transaction_session_timeout": "0"},
    )  # fmt: skip


async def run_legacy(
    settings: Settings, cmd: LegacyCommand, *, echo: Callable[[str], None] = print
) -> None:
    """Run the command; raise LegacyImportError (one line) when it did not succeed."""
    if cmd.rollback:
        await rollback_command(settings, cmd, echo=echo)
    else:
        await import_command(settings, cmd, echo=echo)


@asynccontextmanager
async def _stopped_cleanly() -> AsyncIterator[None]:
    """Database and network failures mid-run become one line; the transaction that
    was open is gone with its connection, so nothing was committed."""
    try:
        yield
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise LegacyImportError(f"import-legacy stopped: {reason}; nothing was committed") from exc


def _tables(raw: str | None) -> tuple[LegacyTable, ...]:
    try:
        return parse_tables(raw)
    except ValueError as exc:
        raise LegacyImportError(str(exc)) from None


async def rollback_command(
    settings: Settings, cmd: LegacyCommand, *, echo: Callable[[str], None] = print
) -> list[Removed]:
    """`--rollback`: delete the rows imports created from the chosen tables."""
    tables = _tables(cmd.tables)
    async with _stopped_cleanly():
        target = await open_target(settings, migrate=not cmd.dry_run)
        try:
            removed = await rollback_legacy(target, tables, dry_run=cmd.dry_run)
        finally:
            await target.close()
    verb = "would remove" if cmd.dry_run else "removed"
    for r in removed:
        touched = f" ({r.touched} changed by this server since the import)" if r.touched else ""
        echo(f"{verb} {r.rows} rows imported from {r.source}{touched}")
    if cmd.dry_run:
        echo("dry run: nothing was written")
    return removed


async def import_command(
    settings: Settings, cmd: LegacyCommand, *, echo: Callable[[str], None] = print
) -> ImportReport:
    """The import (or its dry run); raises LegacyImportError unless the count check
    passed (a real run is then committed)."""
    if not cmd.source:
        raise LegacyImportError("--source is required (except with --rollback)")
    tables = _tables(cmd.tables)
    options = _options(cmd)
    async with _stopped_cleanly():
        source = await open_source(cmd.source, connect_timeout=settings.db_connect_timeout)
        try:
            # The source is checked before the target is opened (or migrated): a missing
            # table leaves the configured database exactly as it was.
            try:
                async with source.transaction(readonly=True):
                    await discover(source, options.schema, tables)
            except asyncpg.PostgresError as exc:
                raise LegacyImportError(f"legacy source: {exc}") from exc
            target = await open_target(settings, migrate=not cmd.dry_run)
            try:
                classifier = await _connect_target(settings)
                try:
                    report, adopting = await _run(
                        source, target, classifier, tables, options, cmd, echo
                    )
                finally:
                    await classifier.close()
            finally:
                await target.close()
        finally:
            await source.close()
    for line in format_report(report):
        echo(line)
    unknown = sorted(adopting - {w.url.rstrip("/") for w in settings.comfy_workers})
    if unknown and not cmd.dry_run:
        echo(f"note: adopted jobs run on {', '.join(unknown)}, not in COMFY_WORKERS: add them"
             " so that the runner can follow those jobs")  # fmt: skip
    if not report.ok:
        failed = ", ".join(t.source for t in report.tables if t.problems) or "the job tables"
        if cmd.dry_run:
            raise LegacyImportError(f"count check failed for {failed} (dry run)")
        raise LegacyImportError(f"count check failed for {failed}; the import was rolled back")
    if cmd.dry_run:
        echo("dry run: nothing was written")
    else:
        rows = sum(t.imported + t.updated for t in report.tables)
        echo(f"count check passed; committed {rows} rows")
    return report


async def _run(source: asyncpg.Connection, target: asyncpg.Connection,
               classifier: asyncpg.Connection, tables: tuple[LegacyTable, ...],
               options: ImportOptions, cmd: LegacyCommand,
               echo: Callable[[str], None]) -> tuple[ImportReport, set[str]]:  # fmt: skip
    terminal = sys.stdout.isatty() or sys.stderr.isatty()
    progress: BarProgress | LogProgress = BarProgress(echo) if terminal else LogProgress(echo)

    def on_skip(table: str, legacy_id: str, reason: str) -> None:
        progress.line(f"skip {table} {legacy_id!r}: {reason}")

    timeouts = httpx.Timeout(cmd.worker_timeout, connect=min(cmd.worker_timeout, 3.0))
    async with httpx.AsyncClient(timeout=timeouts, follow_redirects=False) as client:
        probe = WorkerProbe(client)
        with progress.shown() as shown:
            bars: Progress = shown
            report = await import_legacy(
                source, target, tables, options, probe=probe, progress=bars,
                on_skip=on_skip, classifier=classifier,
            )  # fmt: skip
    return report, probe.adopting
