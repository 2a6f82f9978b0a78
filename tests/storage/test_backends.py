"""The storage interface on both backends (local files; S3 on moto), streaming outputs
into it, and media facts read from headers only."""

from __future__ import annotations

import io
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from comfygraph.comfy.media import inspect_file
from comfygraph.db.visibility import Viewer
from comfygraph.storage import S3Options, Storage, open_storage
from comfygraph.studio.files import FileSigner, Grant
from comfygraph.studio.outputs import store_stream
from tests.s3server import CREDENTIALS, create_bucket
from tests.storage.conftest import BACKENDS

BASE = "http://files.test"


@pytest.fixture(params=BACKENDS)
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return open_storage(f"file://{tmp_path}", BASE)
    endpoint = request.getfixturevalue("s3_endpoint")
    options = S3Options(
        endpoint, CREDENTIALS["AWS_REGION"], CREDENTIALS["AWS_ACCESS_KEY_ID"],
        CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )  # fmt: skip
    return open_storage(f"s3://{create_bucket(endpoint)}/p", BASE, options)


class Boom(Exception):
    pass


async def chunks(total: int, size: int = 1 << 20, fail: bool = False) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        part = min(size, total - sent)
        yield bytes([sent // size % 251]) * part
        sent += part
    if fail:
        raise Boom("refused mid-stream")


async def test_put_stream_head_delete(storage: Storage) -> None:
    total = 12 * 1024 * 1024 + 5  # more than two S3 multipart parts
    stored = await storage.put("workflows/w/j/out.bin", chunks(total))
    assert stored.size == total and stored.url == f"{BASE}/files/workflows/w/j/out.bin"
    assert storage.key_for_url(stored.url + "?exp=1&sig=x") == "workflows/w/j/out.bin"
    info = await storage.head(stored.key)
    assert info is not None and info.size == total
    seen = 0
    async for chunk in storage.stream(stored.key):
        seen += len(chunk)
    assert seen == total
    await storage.delete(stored.key)
    assert await storage.head(stored.key) is None


async def test_a_failed_stream_leaves_nothing(storage: Storage) -> None:
    with pytest.raises(Boom):
        await storage.put("uploads/u/r/x.png", chunks(6 * 1024 * 1024, fail=True))
    assert await storage.head("uploads/u/r/x.png") is None


def test_foreign_and_unsafe_urls_are_not_ours(tmp_path: Path) -> None:
    storage = open_storage(f"file://{tmp_path}", BASE)
    for url in ("http://elsewhere/files/a.png", f"{BASE}/files/../etc/passwd",
                f"{BASE}/files/" + "a/" * 5000 + "b", f"{BASE}/other/a.png"):  # fmt: skip
        assert storage.key_for_url(url) is None


def test_signatures_bind_key_expiry_grant_and_viewer(tmp_path: Path) -> None:
    storage = open_storage(f"file://{tmp_path}", BASE)
    signer = FileSigner(storage, "s" * 32, ttl_seconds=60, public_ttl_seconds=3600)
    import uuid

    alice = Viewer(uuid.uuid4())
    url = signer.sign(f"{BASE}/files/previews/x.png?v=5", Grant.owner(alice.user_id), alice)
    path, _, query = url.removeprefix(f"{BASE}/files/").partition("?")
    params = dict(p.split("=", 1) for p in query.split("&"))
    assert params["v"] == "5"
    ok = signer.verify(path, params)
    assert ok is not None and ok.viewer_id == alice.user_id and ok.key == "previews/x.png"
    assert signer.verify("previews/y.png", params) is None
    assert signer.verify(path, params, now=time.time() + 120) is None  # expired
    # Expiries are rounded: the same file keeps one URL for a while (caches keep it).
    assert signer.sign(f"{BASE}/files/a.png", Grant.owner(alice.user_id), alice) == signer.sign(
        f"{BASE}/files/a.png", Grant.owner(alice.user_id), alice
    )


def _animation(fmt: str, frames: int) -> bytes:
    images = [Image.new("RGB", (32, 24), (n * 37 % 256, n * 91 % 256, 150)) for n in range(frames)]
    out = io.BytesIO()
    images[0].save(out, format=fmt, save_all=True, append_images=images[1:], duration=40, loop=0)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["WEBP", "GIF"])
async def test_streamed_output_facts_without_decoding_frames(
    fmt: str, storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _animation(fmt, 50)

    async def source() -> AsyncIterator[bytes]:
        for at in range(0, len(data), 4096):
            yield data[at : at + 4096]

    # Decoding a frame would go through Image.load: the facts must not need it.
    def no_decode(self: Image.Image) -> None:
        raise AssertionError("a frame was decoded")

    monkeypatch.setattr(Image.Image, "load", no_decode)
    name = f"anim.{fmt.lower()}"
    stored, facts = await store_stream(storage, f"workflows/w/j/{name}", name, source())
    monkeypatch.undo()
    assert stored.size == len(data) and await storage.read(stored.key) == data
    with Image.open(io.BytesIO(data)) as img:  # what decoding every frame says
        frames = img.n_frames
        total_ms = 0
        for index in range(frames):
            img.seek(index)
            img.load()
            total_ms += img.info["duration"]
    assert facts.kind == "VIDEO" and facts.frames == frames > 1
    assert facts.duration_seconds == pytest.approx(total_ms / 1000)
    assert (facts.width, facts.height) == (32, 24)


def test_facts_from_a_file_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "a.gif"
    path.write_bytes(_animation("GIF", 3))
    facts = inspect_file("a.gif", path)
    assert facts.kind == "VIDEO" and facts.frames == 3
