"""Storing an uploaded input file (uploadFile): its type sniffed from its bytes, its size
bounded while it is read, its name made safe, its key one nobody else can pick.

    stored = await store_upload(storage, upload, owner=user_id, limit=settings.max_upload_bytes)

The client's content type and file extension are never trusted: the first bytes decide
(`sniff`), and the stored name gets the extension of what was found. Keys look like
`uploads/{owner}/{random}/{name}`, so two uploads never collide and a name such as
`../../etc/passwd` is only a name (`passwd.png`). At most `limit + 1` bytes are read;
on any refusal nothing is left in storage.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.datastructures import UploadFile

from comfygraph.storage import Storage, StoredFile, safe_name
from comfygraph.studio.sniff import SUPPORTED, FileType, MarkupGuard, sniff

__all__ = ["SUPPORTED", "FileType", "UploadRejected", "sniff", "store_upload", "stored_name"]

# Codes of UploadRejected (userErrors[].code of uploadFile).
NOT_A_FILE = "NOT_A_FILE"
EMPTY_FILE = "EMPTY_FILE"
FILE_TOO_LARGE = "FILE_TOO_LARGE"
UNSUPPORTED_FILE_TYPE = "UNSUPPORTED_FILE_TYPE"
#: the bytes carry HTML or script besides what they claim to be (a polyglot)
UNSAFE_FILE = "UNSAFE_FILE"

SNIFF_BYTES = 64 * 1024  # read before deciding the type; also covers a small ID3 tag
CHUNK_BYTES = 256 * 1024


class UploadRejected(Exception):
    """An upload refused for what it is (a userError); nothing of it was stored."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class StoredUpload:
    url: str
    name: str
    content_type: str
    size: int


def stored_name(filename: str | None, kind: FileType) -> str:
    """A safe file name ending in the sniffed type's extension: `cat.txt` -> `cat.png`."""
    stem = safe_name(filename or "", default="upload")
    stem = stem.rsplit(".", 1)[0] if "." in stem else stem
    return f"{stem or 'upload'}.{kind.extension}"


def _too_large(limit: int) -> UploadRejected:
    return UploadRejected(FILE_TOO_LARGE, f"the file is larger than the limit of {limit} bytes")


def _unsafe() -> UploadRejected:
    return UploadRejected(UNSAFE_FILE, "the file contains HTML or script besides its media")


async def _read_head(upload: UploadFile, size: int) -> bytes:
    head = b""
    while len(head) < size:
        chunk = await upload.read(size - len(head))
        if not chunk:
            break
        head += chunk
    return head


async def store_upload(
    storage: Storage, value: object, *, owner: uuid.UUID, limit: int
) -> StoredUpload:
    """Sniff, bound and store `value` (a file part of a multipart request); raises
    UploadRejected, and then nothing is stored."""
    if not isinstance(value, UploadFile):  # a plain JSON value where a file belongs
        raise UploadRejected(NOT_A_FILE, "send the file as a multipart request part")
    upload: UploadFile = value
    head = await _read_head(upload, min(SNIFF_BYTES, limit + 1))
    if not head:
        raise UploadRejected(EMPTY_FILE, "the file is empty")
    if len(head) > limit:
        raise _too_large(limit)
    kind = sniff(head)
    if kind is None:
        names = ", ".join(k.extension.upper() for k in SUPPORTED)
        raise UploadRejected(UNSUPPORTED_FILE_TYPE, f"unsupported file type (expected {names})")
    guard = MarkupGuard()
    if guard.feed(head):
        raise _unsafe()

    async def chunks() -> AsyncIterator[bytes]:
        yield head
        total = len(head)
        while chunk := await upload.read(min(CHUNK_BYTES, limit + 1 - total)):
            total += len(chunk)
            if total > limit:
                raise _too_large(limit)
            if guard.feed(chunk):
                raise _unsafe()
            yield chunk

    key = f"uploads/{owner}/{uuid.uuid4().hex}/{stored_name(upload.filename, kind)}"
    # A refusal mid-stream leaves nothing: put drops its partial file (or aborts its
    # multipart upload) when the chunks raise.
    stored: StoredFile = await storage.put(key, chunks(), content_type=kind.mime)
    return StoredUpload(stored.url, stored.key.rsplit("/", 1)[-1], kind.mime, stored.size)
