from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from comfygraph.server.app import create_app
from comfygraph.server.settings import Settings
from tests.servers import serve_in_thread

LIMIT = 2 * 1024 * 1024  # max_upload_bytes (1 MiB) + 1 MiB for the rest of the request


@pytest.fixture(scope="module")
def base_url(dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = Settings(
        database_url=dsn,
        data_dir=Path(tmp_path_factory.mktemp("data")),
        max_upload_bytes=1024 * 1024,
    )
    with serve_in_thread(create_app(settings, dsn=dsn)) as url:
        yield url


def test_declared_oversized_body_is_refused_at_once(base_url: str) -> None:
    r = httpx.post(
        f"{base_url}/graphql",
        content=b"x" * (LIMIT + 1),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 413
    assert r.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"


def test_streamed_oversized_body_is_cut_off(base_url: str) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer
        for _ in range(LIMIT // 65536 + 2):
            yield b"x" * 65536

    r = httpx.post(
        f"{base_url}/graphql", content=chunks(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413


def test_normal_requests_pass_and_the_server_keeps_serving(base_url: str) -> None:
    r = httpx.post(f"{base_url}/graphql", json={"query": "{ __typename }"})
    assert r.json() == {"data": {"__typename": "Query"}}
