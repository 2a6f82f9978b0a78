"""`serve --demo`: a newcomer's first run. A demo user and its token, printed with the
GraphiQL URL, and a ComfyUI emulator worker running in this process (a thread with
its own event loop, so simulated work never stalls the API's loop)."""

from __future__ import annotations

import atexit
from dataclasses import dataclass
from pathlib import Path

from comfygraph.db.migrate import apply_migrations
from comfygraph.db.pool import connect
from comfygraph.db.users import create_user, get_user_by_email
from comfygraph.server.settings import Settings, WorkerSpec
from comfygraph.server.threaded import free_port, start_in_thread
from comfygraph.studio.auth import issue_token

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-password"
DEMO_TOKEN_TTL = 7 * 24 * 3600
DEMO_WORKER_PRICE = 0.5  # $/hour, so the demo's jobs show a cost


@dataclass(frozen=True)
class DemoUser:
    email: str
    password: str
    token: str


async def ensure_demo_user(settings: Settings, dsn: str) -> DemoUser:
    conn = await connect(dsn, connect_timeout=settings.db_connect_timeout)
    try:
        await apply_migrations(conn)
        row = await get_user_by_email(conn, DEMO_EMAIL)
        if row is None:
            row = await create_user(
                conn, email=DEMO_EMAIL, password=DEMO_PASSWORD, full_name="Demo User"
            )
    finally:
        await conn.close()
    token = issue_token(
        settings.effective_jwt_secret(),
        row["id"],
        role=row["role"],
        ttl=DEMO_TOKEN_TTL,
        version=row["token_version"],
    )
    return DemoUser(DEMO_EMAIL, DEMO_PASSWORD, token)


def banner(url: str, demo: DemoUser, workers: str, assets: Path | None = None) -> str:
    where = (
        f"from {assets}"
        if assets
        else "from unpkg.com (offline: set GRAPHIQL_ASSETS_DIR to a folder of them)"
    )
    return (
        f"\n  comfygraph demo\n"
        f"  GraphiQL : {url}/graphql\n"
        f"  user     : {demo.email} / {demo.password}\n"
        f"  token    : {demo.token}\n"
        f"  (send it as the header  Authorization: Bearer <token>; GraphiQL has it already)\n"
        f"  GraphiQL's assets {where}\n"
        f"  worker   : {workers} (the ComfyUI emulator, not a GPU)\n"
    )


def start_demo_worker(data_dir: Path, *, speed: float = 4.0) -> str:
    """Run the emulator on a free loopback port in a daemon thread; return its URL."""
    from comfygraph.emulator import create_emulator_app

    port = free_port()
    app = create_emulator_app(speed=speed, output_dir=data_dir / "emulator" / "output")
    start_in_thread(app, port=port, timeout=15, access_log=False)
    url = f"http://127.0.0.1:{port}"
    announce_demo_worker(data_dir, url)
    return url


def demo_worker_file(data_dir: Path) -> Path:
    return data_dir / "demo-worker.url"


def announce_demo_worker(data_dir: Path, url: str) -> None:
    """Leave the worker's URL where `comfygraph workers` finds it while the demo runs."""
    path = demo_worker_file(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(url + "\n")
    atexit.register(path.unlink, missing_ok=True)


def running_demo_worker(data_dir: Path) -> WorkerSpec | None:
    """The worker of a `serve --demo` on this data dir, if one announced itself."""
    try:
        url = demo_worker_file(data_dir).read_text().strip()
    except OSError:
        return None
    return WorkerSpec(url, DEMO_WORKER_PRICE) if url.startswith("http") else None
