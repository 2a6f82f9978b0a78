"""The embedded PostgreSQL, supervised: SIGKILL of its postmaster is answered with
SERVICE_UNAVAILABLE (never INTERNAL_SERVER_ERROR) until the server has started it
again; after SIGTERM of the server the postmaster is gone within 10 s."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.servers import free_port

LOGIN = """mutation { login(email: "nobody@example.com", password: "not-a-password") {
  userErrors { code } } }"""


def postmaster(data: Path) -> int:
    return int((data / "pg" / "postmaster.pid").read_text().split()[0])


def _pid_or_none(data: Path) -> int | None:
    try:
        return postmaster(data)
    except (OSError, ValueError, IndexError):
        return None


def _until(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (httpx.HTTPError, OSError, ValueError, IndexError):
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize("workers", [1, 2])
def test_killed_postmaster_is_restarted_and_stopped_with_the_server(workers: int) -> None:
    """workers=2: the app runs in two uvicorn worker processes; their parent started the
    embedded server, watches it and stops it."""
    # Not under pytest's 0700 tmp dirs: as root the server runs as its own system user.
    data = Path(tempfile.mkdtemp(prefix="comfygraph-supervised-"))
    data.chmod(0o755)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "BROADCAST_URL")}
    # Loops that failed in the outage retry within 2 s and count as well after 5 s up, so
    # /readyz comes back soon after the database does (defaults: 30 s and 60 s).
    env.update(LOOP_BACKOFF_MAX="2", LOOP_HEALTHY_AFTER="5")
    env.update(COMFYGRAPH_DATA_DIR=str(data), COMFY_WORKERS="", EMBEDDED_CHECK_INTERVAL="2",
               JWT_SECRET="supervised-test-secret-0123456789")  # fmt: skip
    log = (data / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "comfygraph.server.cli", "serve", "--port", str(port),
         "--workers", str(workers)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=15) as http:
            _until(lambda: http.get("/readyz").status_code == 200, 90, "/readyz")

            def login() -> dict:
                return http.post("/graphql", json={"query": LOGIN}).json()

            assert login()["data"]["login"]["userErrors"][0]["code"] == "INVALID_CREDENTIALS"
            first = postmaster(data)
            os.kill(first, signal.SIGKILL)
            codes = []
            while True:  # every answer during the outage says "unavailable", then it is back
                restarted = _pid_or_none(data) not in (None, first)
                body = login()
                if restarted and body.get("data") and body["data"].get("login"):
                    break
                codes.extend(e["extensions"]["code"] for e in body.get("errors") or ())
                assert len(codes) < 1000, codes
                time.sleep(0.05)
            assert codes and set(codes) == {"SERVICE_UNAVAILABLE"}, codes
            assert postmaster(data) != first
            assert http.get("/healthz").status_code == 200
            last: list[str] = []

            def ready() -> bool:
                answer = http.get("/readyz")
                last[:] = [answer.text]
                return answer.status_code == 200

            # A loop that failed during the outage comes back after its backoff.
            try:
                _until(ready, 60, "/readyz again")
            except AssertionError:
                raise AssertionError(f"/readyz still says {last}") from None
        second = postmaster(data)
        proc.send_signal(signal.SIGTERM)
        stopped_at = time.monotonic()
        proc.wait(30)
        _until(lambda: not psutil.pid_exists(second), 10, "the postmaster to stop")
        assert time.monotonic() - stopped_at < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        if not any(p.info["cmdline"] and str(data) in " ".join(p.info["cmdline"])
                   for p in psutil.process_iter(["cmdline"])):  # fmt: skip
            shutil.rmtree(data, ignore_errors=True)
