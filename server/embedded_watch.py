"""The embedded PostgreSQL, supervised: a loop checks its postmaster and starts it
again when it died (SIGKILL, OOM). When it cannot, the loop fails, the supervisor
retries with backoff, and /healthz answers 503 so a process supervisor restarts us."""

from __future__ import annotations

import asyncio
from pathlib import Path

from comfygraph.db.embedded import restart_embedded
from comfygraph.studio.supervisor import Supervisor

LOOP = "embedded-postgres"


def watch_embedded(supervisor: Supervisor, data_dir: Path, interval: float) -> None:
    async def loop() -> None:
        while True:
            await asyncio.sleep(interval)
            await asyncio.to_thread(restart_embedded, data_dir)

    supervisor.start(LOOP, loop)
