"""comfygraph.client against a live server (the app and an emulator worker, real HTTP
and websockets): submit, progress, wait, feed, upload, and the errors it raises."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from PIL import Image

from comfygraph.client import ApiError, Client, UserErrors
from comfygraph.db.users import create_user
from comfygraph.emulator import create_emulator_app
from comfygraph.server.app import create_app
from comfygraph.server.settings import Settings, WorkerSpec
from comfygraph.studio.auth import issue_token
from tests.servers import serve_in_thread

SECRET = "client-tests-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def url(dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    out = tmp_path_factory.mktemp("emulator")
    with serve_in_thread(create_emulator_app(speed=50.0, seed=1, output_dir=out)) as worker:
        data = Path(tmp_path_factory.mktemp("data"))
        workers = (WorkerSpec(worker, 0.5),)
        settings = Settings(
            database_url=dsn, data_dir=data, jwt_secret=SECRET, comfy_workers=workers
        )
        with serve_in_thread(create_app(settings, dsn=dsn)) as base:
            yield base


@pytest.fixture(scope="module")
async def token(pool: asyncpg.Pool) -> str:
    async with pool.acquire() as conn:
        user = await create_user(conn, email="client@example.com", password="client-pass-1")
    return issue_token(SECRET, user["id"], role="user")


async def test_submit_follow_and_wait(url: str, token: str) -> None:
    async with Client(url, token=token) as api:
        job = await api.submit("product-image", {"prompt": "pink tennis shoes"})
        assert job.status == "PENDING" and job.workflow_name == "product-image"
        events = [event async for event in api.progress(job.id)]
        assert events[-1].status == "COMPLETED" and events[-1].progress == 100
        progress = [e.progress for e in events]
        assert progress == sorted(progress)
        done = await api.wait(job.id)
        assert done.done and done.status == "COMPLETED"
        assert done.outputs and done.outputs[0].kind == "IMAGE" and done.outputs[0].url
        feed = [j.id async for j in api.feed(first=1)]
        assert job.id in feed


async def test_upload_and_use_it(url: str, token: str, tmp_path: Path) -> None:
    picture = tmp_path / "in.png"
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "pink").save(buffer, "PNG")
    picture.write_bytes(buffer.getvalue())
    async with Client(url, token=token) as api:
        stored = await api.upload(picture, content_type="image/png")
        assert stored.startswith("http")
        job = await api.submit("img2img", {"image": stored, "prompt": "in watercolour"})
        assert (await api.wait(job.id)).status == "COMPLETED"


async def test_errors_carry_codes(url: str, token: str) -> None:
    async with Client(url, token=token) as api:
        with pytest.raises(UserErrors) as refused:
            await api.submit("product-image", {"prompt": "x", "nope": 1})
        assert refused.value.codes == ["UNKNOWN_PARAMETER"]
        with pytest.raises(ApiError) as bad:
            await api.job("not-an-id")
        assert bad.value.codes == ["INVALID_ID"]
    async with Client(url, token="garbage") as anonymous:
        with pytest.raises(ApiError) as unauthenticated:
            await anonymous.submit("product-image", {"prompt": "x"})
        assert unauthenticated.value.codes == ["UNAUTHENTICATED"]
