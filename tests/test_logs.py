"""Structured logs: JSON lines off a terminal with the bound request, user, job and
prompt ids; X-Request-ID honoured (or made up) and sent back."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import structlog

from comfygraph.server.app import create_app
from comfygraph.server.logs import configure_logging
from comfygraph.server.settings import Settings
from tests.servers import serve_in_thread


def test_library_records_become_json_lines_with_the_bound_ids() -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    out = io.StringIO()
    try:
        configure_logging(stream=out, json=True)
        with structlog.contextvars.bound_contextvars(request_id="r-1", job_id="j-1",
                                                     prompt_id="p-1", user_id="u-1"):  # fmt: skip
            logging.getLogger("some.library").warning("worker %s is slow", "gpu-1")
    finally:
        root.handlers, root.level = saved[0], saved[1]
    line = json.loads(out.getvalue().strip().splitlines()[-1])
    assert line["event"] == "worker gpu-1 is slow"
    assert line["level"] == "warning" and line["logger"] == "some.library"
    assert (line["request_id"], line["job_id"], line["prompt_id"], line["user_id"]) == (
        "r-1", "j-1", "p-1", "u-1",
    )  # fmt: skip


@pytest.fixture(scope="module")
def base_url(dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = Settings(database_url=dsn, data_dir=Path(tmp_path_factory.mktemp("data")))
    with serve_in_thread(create_app(settings, dsn=dsn)) as url:
        yield url


def test_request_id_is_honoured_or_made_up(base_url: str) -> None:
    given = httpx.get(f"{base_url}/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = httpx.get(f"{base_url}/healthz")
    assert len(made.headers["x-request-id"]) == 32
    bad = httpx.get(f"{base_url}/healthz", headers={"X-Request-ID": "no spaces <allowed>"})
    assert bad.headers["x-request-id"] != "no spaces <allowed>"
