from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from comfygraph.db.embedded import start_embedded
from comfygraph.db.migrate import apply_migrations
from comfygraph.db.pool import create_pool
from tests.dbutil import create_database, drop_database

# Every test talks from 127.0.0.1, and with Redis the counters are shared by all modules
# (and runs): the suite's servers get rate limits it cannot reach. The tests of the
# limits themselves (tests/graphql/test_limits.py) set small ones explicitly.
for _name in ("RATE_ANONYMOUS_PER_SECOND", "RATE_LOGINS_PER_MINUTE_PER_ADDRESS",
              "RATE_LOGINS_PER_MINUTE_PER_EMAIL", "RATE_SUBMISSIONS_PER_MINUTE",
              "RATE_ACTIVE_JOBS", "RATE_UPLOADS_PER_MINUTE"):  # fmt: skip
    os.environ.setdefault(_name, "1000000")


@pytest.fixture(scope="session")
def admin_dsn() -> str:
    """A PostgreSQL server the tests may create databases on."""
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    # Not under pytest's tmp dirs: those are 0700, and the embedded server runs as its own
    # system user when tests run as root, so it could not reach its data folder to stop.
    root = Path(tempfile.mkdtemp(prefix="comfygraph-tests-"))
    root.chmod(0o755)
    return start_embedded(root, cleanup="delete")


@pytest.fixture(scope="module")
async def empty_dsn(admin_dsn: str, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A new, empty database for this test module, dropped afterwards."""
    dsn = await create_database(admin_dsn, request.module.__name__.rsplit(".", 1)[-1])
    yield dsn
    await drop_database(admin_dsn, dsn)


@pytest.fixture(scope="module")
async def dsn(empty_dsn: str) -> str:
    """A migrated database for this test module."""
    conn = await asyncpg.connect(empty_dsn)
    try:
        await apply_migrations(conn)
    finally:
        await conn.close()
    return empty_dsn


@pytest.fixture(scope="module")
async def pool(dsn: str) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(dsn, min_size=2, max_size=8)
    yield p
    await p.close()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3-protocol server (moto, its own process on a free port) for this session."""
    from tests.s3server import moto_server

    with moto_server() as url:
        yield url
