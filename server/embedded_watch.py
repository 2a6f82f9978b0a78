"""The embedded PostgreSQL, supervised: whoever started it (a single process's
embedded-postgres loop, or the parent of `serve --workers N` from a thread) checks its
postmaster and starts it again when it died (SIGKILL, OOM). When that fails
`failing_after` times in a row it writes FAILING_FILE in the data dir with the reason,
and /healthz of every process of the server answers 503 so a process supervisor
restarts it; a check that finds the postmaster running again removes the file.

A file, not a pipe or shared memory: uvicorn spawns its workers (and spawns a dead one
again), so nothing inherited reaches a new one, while every process already knows the
data dir. A missing file costs a reader one failed open; an operator can read it; one
left by a parent that was SIGKILLed is removed by the next watcher as it starts (its
process has just started or joined a running postmaster).
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from comfygraph.db.embedded import EmbeddedPostgresError, restart_embedded
from comfygraph.server.settings import Settings
from comfygraph.studio.supervisor import Supervisor

log = logging.getLogger(__name__)

LOOP = "embedded-postgres"
FAILING_FILE = "embedded-postgres.failing"


class RestartWatch:
    """Restarts of one data dir's postmaster, with the failures in a row counted."""

    def __init__(self, data_dir: Path, failing_after: int) -> None:
        self.data_dir = data_dir
        self.failing_after = failing_after
        self.failures = 0
        self._file = data_dir / FAILING_FILE
        self._file.unlink(missing_ok=True)  # stale: see the module's docstring

    def check(self) -> bool:
        """Start the postmaster again if it died; True when it had to. Blocking (pg_ctl):
        call it from a thread. Raises EmbeddedPostgresError when it could not."""
        try:
            restarted = restart_embedded(self.data_dir)
        except EmbeddedPostgresError as exc:
            self.failures += 1
            if self.failures == self.failing_after:
                log.error("embedded PostgreSQL could not be restarted %d times: /healthz "
                          "fails until it is", self.failures)  # fmt: skip
            if self.failures >= self.failing_after:
                _write_atomically(self._file, str(exc)[:200])
            raise
        # Running (again): whoever wrote the file, it no longer holds.
        self.failures = 0
        self._file.unlink(missing_ok=True)
        return restarted


def _write_atomically(path: Path, text: str) -> None:
    """A reader sees the old file, no file, or the new one; never half of it."""
    part = path.with_name(f".{path.name}.{os.getpid()}")
    part.write_text(text)
    os.replace(part, path)


def failing_reason(settings: Settings) -> str | None:
    """Why the embedded PostgreSQL of this process's server cannot be restarted, or None
    (also when the database is not embedded). A small file read: fine on the event loop
    at a probe's pace."""
    if not (settings.embedded or settings.embedded_watched_by_parent):
        return None
    try:
        return (settings.data_dir / FAILING_FILE).read_text() or "failing"
    except FileNotFoundError:
        return None


def watch_embedded(supervisor: Supervisor, settings: Settings) -> None:
    watch = RestartWatch(settings.data_dir, settings.loop_failing_after)

    async def loop() -> None:
        while True:
            await asyncio.sleep(settings.embedded_check_interval)
            await asyncio.to_thread(watch.check)

    supervisor.start(LOOP, loop)
