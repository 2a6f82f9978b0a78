"""The app and its emulator worker (tests/mutations), set up to deliver webhooks to a
loopback receiver quickly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.mutations.conftest import app, bus, emulator_url  # noqa: F401  (fixtures)
from tests.webhooks.receiver import Receiver, serve_receiver


@pytest.fixture(scope="module")
def app_options() -> dict[str, Any]:
    return {
        "webhook_allow_private": True,
        "webhook_allow_http_hosts": ("127.0.0.1",),
        "webhook_backoff_initial": 0.2,
        "webhook_poll_interval": 0.2,
        "webhook_progress_seconds": 0.5,
    }


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    async with serve_receiver(Receiver()) as r:
        yield r
