"""The embedded PostgreSQL, supervised: SIGKILL of its postmaster is answered with
SERVICE_UNAVAILABLE (never INTERNAL_SERVER_ERROR) until the server has started it
again; after SIGTERM of the server the postmaster is gone within 10 s; a postmaster
that cannot be started again fails /healthz in every process of the server."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
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


@contextlib.contextmanager
def serving(workers: int) -> Iterator[tuple[subprocess.Popen[bytes], Path, str]]:
    """`comfygraph serve --workers N` on the embedded PostgreSQL of a fresh data dir,
    ready; yields the process, the data dir and the base URL."""
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
        yield proc, data, base
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        if not any(p.info["cmdline"] and str(data) in " ".join(p.info["cmdline"])
                   for p in psutil.process_iter(["cmdline"])):  # fmt: skip
            shutil.rmtree(data, ignore_errors=True)


def stop(proc: subprocess.Popen[bytes], data: Path) -> None:
    """SIGTERM the server: it exits, and its postmaster is gone within 10 s."""
    running = _pid_or_none(data)
    proc.send_signal(signal.SIGTERM)
    stopped_at = time.monotonic()
    proc.wait(30)
    if running is not None and psutil.pid_exists(running):
        _until(lambda: not psutil.pid_exists(running), 10, "the postmaster to stop")
    assert time.monotonic() - stopped_at < 10


@pytest.mark.parametrize("workers", [1, 2])
def test_killed_postmaster_is_restarted_and_stopped_with_the_server(workers: int) -> None:
    """workers=2: the app runs in two uvicorn worker processes; their parent started the
    embedded server, watches it and stops it."""
    with serving(workers) as (proc, data, base), httpx.Client(base_url=base, timeout=15) as http:

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
            # A restart under way is no reason for a supervisor to restart the server.
            assert http.get("/healthz").status_code == 200
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
        stop(proc, data)


def healthz_by_process(server: psutil.Process, port: int) -> tuple[int, int, dict]:
    """GET /healthz on a new connection: (the pid of the server process that answered,
    the status, the body). The pid is the process holding the other end of the socket."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        answer = b""
        while not _complete(answer):
            chunk = sock.recv(4096)
            assert chunk, answer
            answer += chunk
        # Kept alive, so the server still holds the connection it answered on.
        client = sock.getsockname()
        pids = [p.pid for p in (server, *server.children(recursive=True))
                if any(c.raddr and c.raddr == client for c in _tcp(p))]  # fmt: skip
    assert len(pids) == 1, pids
    head, _, body = answer.partition(b"\r\n\r\n")
    return pids[0], int(head.split()[1]), json.loads(body)


def _complete(answer: bytes) -> bool:
    head, found, body = answer.partition(b"\r\n\r\n")
    lengths = [line.split(b":", 1)[1] for line in head.lower().split(b"\r\n")
               if line.startswith(b"content-length:")]  # fmt: skip
    return bool(found and lengths) and len(body) >= int(lengths[0])


def _tcp(process: psutil.Process) -> list:  # type: ignore[type-arg]
    try:
        return process.net_connections(kind="tcp")
    except psutil.NoSuchProcess:
        return []


def every_process_answers(server: psutil.Process, port: int, workers: int, status: int) -> dict:
    """/healthz answers `status` from each of the `workers` processes serving HTTP (fresh
    connections until each has answered; any other status fails); the last body."""
    seen: set[int] = set()
    body: dict = {}
    deadline = time.monotonic() + 60
    while len(seen) < workers:
        assert time.monotonic() < deadline, f"only {seen} of {workers} processes answered"
        pid, code, body = healthz_by_process(server, port)
        assert code == status, (pid, code, body)
        seen.add(pid)
    return body


@pytest.mark.parametrize("workers", [1, 2])
def test_postmaster_that_cannot_be_restarted_fails_healthz_everywhere(workers: int) -> None:
    """The postmaster is SIGKILLed and its postgresql.conf made unreadable to it, so
    every restart fails: /healthz answers 503 with the reason, in every process (a
    Kubernetes liveness probe or systemd then restarts the server); once a restart works
    again it answers 200."""
    with serving(workers) as (proc, data, base):
        server, port = psutil.Process(proc.pid), int(base.rsplit(":", 1)[1])
        every_process_answers(server, port, workers, 200)
        conf = data / "pg" / "postgresql.conf"
        good = conf.read_bytes()
        # A running postmaster reads its configuration only when started (or reloaded).
        conf.write_bytes(good + b"\nthis line is not a setting\n")
        os.kill(postmaster(data), signal.SIGKILL)

        def failing() -> bool:
            return healthz_by_process(server, port)[1] == 503

        _until(failing, 90, "/healthz to fail")
        body = every_process_answers(server, port, workers, 503)
        assert body["status"] == "failing"
        assert "could not restart embedded PostgreSQL" in body["embedded-postgres"], body

        conf.write_bytes(good)  # the next check restarts it
        _until(lambda: healthz_by_process(server, port)[1] == 200, 60, "/healthz again")
        every_process_answers(server, port, workers, 200)
        stop(proc, data)
