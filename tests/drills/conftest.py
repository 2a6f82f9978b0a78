"""Fixtures for the drills as tests: a fleet of real `serve` processes and emulator
processes on a fresh database (tests/drills/fleet.py), stopped whatever the test did."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest

from tests.dbutil import create_database, drop_database
from tests.drills.fleet import Fleet, Postgres


def scratch(prefix: str) -> Path:
    # Not under pytest's 0700 tmp dirs: as root, PostgreSQL runs as a user of its own.
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    return root


FleetFactory = Callable[..., AbstractAsyncContextManager[Fleet]]


@pytest.fixture(scope="module")
def fleet_factory(admin_dsn: str) -> FleetFactory:
    """`async with fleet_factory(workers=2, speed=8) as f:` two replicas and the emulators on a
    database of their own; a Redis of their own when redis-server is installed (else
    PostgreSQL LISTEN/NOTIFY carries the events)."""

    @asynccontextmanager
    async def make(**options: object) -> AsyncIterator[Fleet]:
        dsn = await create_database(admin_dsn, "drill")
        options.setdefault("redis", shutil.which("redis-server") is not None)
        f = Fleet(dsn, scratch("comfygraph-drill-"), **options)  # type: ignore[arg-type]
        try:
            await f.start()
            yield f
        finally:
            f.stop()
            await drop_database(admin_dsn, dsn)

    return make


@pytest.fixture
async def postgres() -> AsyncIterator[Postgres]:
    """A PostgreSQL server of the test's own, which the test may stop and start."""
    server = Postgres(scratch("comfygraph-drill-pg-"))
    server.init()
    await server.start()
    yield server
    server.stop()
