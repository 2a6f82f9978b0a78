"""The storage tests run on both backends: local files, and S3 on a real S3-protocol
server (moto, its own process; tests/s3server.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.mutations.conftest import app, bus, emulator_url  # noqa: F401 (fixtures)
from tests.s3server import CREDENTIALS, create_bucket

BACKENDS = ["local", "s3"]


def s3_settings(endpoint: str) -> dict[str, Any]:
    return {
        "storage_url": f"s3://{create_bucket(endpoint)}/studio",
        "s3_endpoint_url": endpoint,
        "aws_region": CREDENTIALS["AWS_REGION"],
        "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    }


@pytest.fixture(scope="module", params=BACKENDS)
def app_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The module's app on local storage, then on S3."""
    if request.param == "local":
        return {}
    return s3_settings(request.getfixturevalue("s3_endpoint"))
