"""The app (tests/mutations) with an emulator slow enough that a prompt can be seen
queued and running."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from comfygraph.emulator import create_emulator_app
from tests.mutations.conftest import app, app_options  # noqa: F401  (fixtures)
from tests.servers import serve_in_thread


@pytest.fixture(scope="module")
def emulator_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    out = tmp_path_factory.mktemp("emulator")
    with serve_in_thread(create_emulator_app(speed=2, output_dir=out)) as url:
        yield url
