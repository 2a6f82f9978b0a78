"""`serve --demo`: a newcomer's first run. A demo user and its token, printed with the
GraphiQL URL, and a ComfyUI emulator worker running in this process (a thread with
its own event loop, so simulated work never stalls the API's loop)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from comfygraph.db.migrate import apply_migrations
from comfygraph.db.pool import connect
from comfygraph.db.users import create_user, get_user_by_email
from comfygraph.server.settings import Settings
from comfygraph.server.threaded import free_port, start_in_thread
from comfygraph.studio.auth import issue_token

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-password"
DEMO_TOKEN_TTL = 7 * 24 * 3600


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


def banner(url: str, demo: DemoUser, workers: str) -> str:
    return (
        f"\n  comfygraph demo\n"
        f"  GraphiQL : {url}/graphql\n"
        f"  user     : {demo.email} / {demo.password}\n"
        f"  token    : {demo.token}\n"
        f"  (send it as the header  Authorization: Bearer <token>)\n"
        f"  worker   : {workers} (the ComfyUI emulator, not a GPU)\n"
    )


def start_demo_worker(data_dir: Path, *, speed: float = 4.0) -> str:
    """Run the emulator on a free loopback port in a daemon thread; return its URL."""
    from comfygraph.emulator import create_emulator_app

    port = free_port()
    app = create_emulator_app(speed=speed, output_dir=data_dir / "emulator" / "output")
    start_in_thread(app, port=port, timeout=15, access_log=False)
    return f"http://127.0.0.1:{port}"
