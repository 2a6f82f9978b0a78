"""Two replicas behind a real nginx (websocket upgrade), each with its own data
directory, sharing one S3 store (moto): a job submitted through A is followed live over
a websocket through B and its output downloaded through B, though only A has workers
(so A stored it). nginx is the Debian package nginx-light (.ci/run installs it)."""

from __future__ import annotations

import pytest

from tests.dbutil import create_database, drop_database
from tests.drills.conftest import scratch
from tests.drills.fleet import Fleet, Nginx, nginx_drill, nginx_installed
from tests.s3server import CREDENTIALS, create_bucket

pytestmark = pytest.mark.skipif(
    not nginx_installed(), reason="nginx is not installed (Debian package nginx-light)"
)


async def test_submitted_via_a_followed_and_downloaded_via_b(
    admin_dsn: str, s3_endpoint: str
) -> None:
    dsn = await create_database(admin_dsn, "drill_nginx")
    root = scratch("comfygraph-drill-nginx-")
    nginx = Nginx(root, 2)
    env = {
        "STORAGE_URL": f"s3://{create_bucket(s3_endpoint)}/drill",
        "S3_ENDPOINT_URL": s3_endpoint,
        "PUBLIC_BASE_URL": nginx.shared_url,
        **CREDENTIALS,
    }
    fleet = Fleet(dsn, root, speed=8.0, workers=1, redis=False, env=env)
    fleet.per_replica = {1: {"COMFY_WORKERS": ""}}  # B runs nothing: A stores every output
    try:
        await fleet.start()
        await nginx.start([r.url for r in fleet.replicas])
        row = await nginx_drill(fleet, nginx, jobs=3, deadline=30)
    finally:
        nginx.stop()
        fleet.stop()
        await drop_database(admin_dsn, dsn)
    assert (row.accepted, row.completed) == (3, 3), row
    assert row.clean, row  # every end seen through B, every file downloaded through B
    assert "3 redirected to S3" in " ".join(row.notes), row
