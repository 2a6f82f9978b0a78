"""server.uploads without HTTP: the sniffer on every supported type and on look-alikes,
and the read bound, on starlette's own UploadFile over a real file and real storage."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import pytest
from starlette.datastructures import UploadFile

from comfygraph.storage import LocalStorage
from comfygraph.studio.uploads import (
    SNIFF_BYTES,
    UploadRejected,
    sniff,
    store_upload,
    stored_name,
)
from tests.mutations import media
from tests.mutations.conftest import tree


@pytest.mark.parametrize("name", list(media.SUPPORTED))
def test_sniffs_each_supported_type(name: str) -> None:
    content, mime = media.SUPPORTED[name]
    found = sniff(content[:SNIFF_BYTES])
    assert found is not None and found.mime == mime


@pytest.mark.parametrize("name", list(media.UNSUPPORTED))
def test_refuses_what_is_not_supported(name: str) -> None:
    assert sniff(media.UNSUPPORTED[name]) is None


def test_an_id3_tag_longer_than_the_sniffed_head_is_still_mp3() -> None:
    big = 200_000  # a tag with cover art
    size = bytes((big >> shift) & 0x7F for shift in (21, 14, 7, 0))
    head = (b"ID3\x03\x00\x00" + size + b"\x00" * big)[:SNIFF_BYTES]
    found = sniff(head)
    assert found is not None and found.mime == "audio/mpeg"


@pytest.mark.parametrize(
    ("filename", "stored"),
    [("../../etc/passwd", "passwd.png"), ("photo.txt", "photo.png"), (None, "upload.png"),
     ("..", "upload.png"), ("C:\\Users\\me\\cat.PNG", "cat.png"), ("été.png", "ete.png"),
     ("a/b/.hidden", "hidden.png"), ("x" * 500 + ".png", "x" * 120 + ".png")],
)  # fmt: skip
def test_stored_names(filename: str | None, stored: str) -> None:
    found = sniff(media.png())
    assert found is not None
    assert stored_name(filename, found) == stored


def _upload(content: bytes, filename: str = "in.bin") -> tuple[UploadFile, io.BytesIO]:
    raw = io.BytesIO(content)
    return UploadFile(raw, filename=filename), raw


async def test_reads_at_most_one_byte_over_the_limit(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "files", "http://files.test")
    limit = 10_000
    for size in (limit + 1, 3 * SNIFF_BYTES, 5_000_000):
        upload, raw = _upload(media.png() + b"\x00" * (size - len(media.png())))
        with pytest.raises(UploadRejected) as caught:
            await store_upload(storage, upload, owner=uuid.uuid4(), limit=limit)
        assert caught.value.code == "FILE_TOO_LARGE"
        assert raw.tell() <= limit + 1, "never more than limit + 1 bytes are read"
    big = 300_000  # past the sniffed head: rejected while streaming into storage
    upload, raw = _upload(media.png() + b"\x00" * big)
    with pytest.raises(UploadRejected):
        await store_upload(storage, upload, owner=uuid.uuid4(), limit=big)
    assert raw.tell() == big + 1
    assert [p for p in tree(storage.root) if not p.startswith("uploads")] == []
    assert not [p for p in (storage.root / "uploads").rglob("*") if p.is_file()]
    assert not list((storage.root / "uploads").glob("*/*")), "no folder left behind"


async def test_stores_exactly_the_bytes(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "files", "http://files.test")
    content = media.png() + b"\x00" * (2 * SNIFF_BYTES)  # several chunks
    owner = uuid.uuid4()
    upload, _ = _upload(content, "../../etc/passwd")
    stored = await store_upload(storage, upload, owner=owner, limit=len(content))
    assert (stored.name, stored.content_type, stored.size) == (
        "passwd.png",
        "image/png",
        len(content),
    )
    key = storage.key_for_url(stored.url)
    assert key is not None and key.startswith(f"uploads/{owner}/") and key.endswith("/passwd.png")
    assert await storage.read(key) == content


async def test_not_a_file(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "files", "http://files.test")
    with pytest.raises(UploadRejected) as caught:
        await store_upload(storage, "just a string", owner=uuid.uuid4(), limit=100)
    assert caught.value.code == "NOT_A_FILE"
