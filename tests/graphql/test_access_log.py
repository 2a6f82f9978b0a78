"""ACCESS_LOG (`serve --access-log`): one structured JSON line per HTTP request, with
the request id, the viewer, the operation name, the status and the duration, and no
uvicorn text line."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from comfygraph.server.logs import configure_logging
from comfygraph.server.settings import Settings
from tests.graphql.client import GraphQLClient
from tests.graphql.conftest import SECRET
from tests.graphql.world import World


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, dsn: str) -> Settings:
    data = Path(tmp_path_factory.mktemp("data"))
    return Settings(database_url=dsn, data_dir=data, jwt_secret=SECRET, access_log=True)


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    out = io.StringIO()
    configure_logging(stream=out, json=True)
    try:
        yield out
    finally:
        root.handlers, root.level = saved[0], saved[1]


def _access_lines(out: io.StringIO) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
    return [line for line in lines if line.get("logger") == "comfygraph.access"]


def test_a_request_logs_one_structured_line(
    clients: dict[str, GraphQLClient], world: World, log_lines: io.StringIO
) -> None:
    alice = clients["alice"]
    query = "query FeedPage { jobs(first: 2) { pageInfo { hasNextPage } } }"
    r = alice.http.post("/graphql", json={"query": query}, headers={"X-Request-ID": "req-77"})
    assert r.status_code == 200 and "errors" not in r.json()
    # The line is written once the response has gone out: wait for it (the server thread).
    lines = _wait_for(log_lines, lambda ls: any(line.get("request_id") == "req-77" for line in ls))
    (line,) = [line for line in lines if line.get("request_id") == "req-77"]
    assert line["event"] == "request" and line["level"] == "info"
    assert (line["method"], line["path"], line["status"]) == ("POST", "/graphql", 200)
    assert line["operation"] == "FeedPage"
    assert line["user_id"] == str(world.users["alice"]["id"])
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0

    anonymous = clients["anonymous"].http.get("/healthz", headers={"X-Request-ID": "req-78"})
    assert anonymous.status_code == 200
    lines = _wait_for(log_lines, lambda ls: any(line.get("request_id") == "req-78" for line in ls))
    (health,) = [line for line in lines if line.get("request_id") == "req-78"]
    assert (health["method"], health["path"], health["status"]) == ("GET", "/healthz", 200)
    assert "user_id" not in health and "operation" not in health
    # Not uvicorn's text line as well.
    assert not any(json.loads(x).get("logger") == "uvicorn.access"
                   for x in log_lines.getvalue().splitlines() if x.strip())  # fmt: skip


def _wait_for(out: io.StringIO, done: Any, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The access lines once `done(lines)` holds, woken by each record the server logs."""
    changed = threading.Condition()

    class Wake(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            with changed:
                changed.notify_all()

    root = logging.getLogger()
    wake = Wake()
    root.addHandler(wake)  # after the JSON handler: its line is written when we wake
    try:
        with changed:
            changed.wait_for(lambda: done(_access_lines(out)), timeout)
    finally:
        root.removeHandler(wake)
    return _access_lines(out)
