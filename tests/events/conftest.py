"""Fixtures for the event bus: one bus per backend, on real PostgreSQL and real Redis."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest

from comfygraph.bus import EventBus
from tests.events.helpers import bus_options

BACKENDS = ["memory", "postgres", "redis"]


def _redis_url() -> str:
    url = os.environ.get("BROADCAST_URL", "")
    return url if url.startswith("redis://") else "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = _redis_url()
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    try:
        socket.create_connection((host, port), timeout=1.0).close()
    except OSError:
        pytest.skip(f"nothing listens at {host}:{port}: Redis tests need a Redis server there")
    return url


@pytest.fixture(params=BACKENDS)
def backend_url(request: pytest.FixtureRequest) -> str:
    """The broadcast URL of each backend; PostgreSQL is this module's fresh database."""
    if request.param == "memory":
        return "memory://"
    if request.param == "postgres":
        return str(request.getfixturevalue("empty_dsn"))
    return str(request.getfixturevalue("redis_url"))


@pytest.fixture(params=["postgres", "redis"])
def shared_url(request: pytest.FixtureRequest) -> str:
    """A backend that several buses (processes) share."""
    fixture = "empty_dsn" if request.param == "postgres" else "redis_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
async def bus(backend_url: str) -> AsyncIterator[EventBus]:
    async with EventBus.from_url(backend_url, options=bus_options()) as b:
        yield b
