"""The storage interface every backend implements (local files, S3-compatible stores).

A stored object has a key (`workflows/{workflow}/{job_id}/{name}`, `uploads/{owner}/...`,
`previews/{job_id}.png`) and one canonical URL, `{PUBLIC_BASE_URL}/files/{key}`, on
every backend: rows keep that URL, and clients get it signed (studio/files.py) so that
`/files` can still refuse a file whose job was deleted or made private. On S3, `/files`
answers with a redirect to a short presigned URL instead of the bytes.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from comfygraph.storage.keys import StorageError, safe_key

Chunks = bytes | AsyncIterable[bytes]


@dataclass(frozen=True)
class StoredFile:
    key: str
    url: str
    size: int


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    content_type: str | None = None


class Storage(Protocol):
    base_url: str

    def url_for(self, key: str) -> str: ...

    def key_for_url(self, url: str) -> str | None: ...

    async def put(
        self, key: str, chunks: Chunks, *, content_type: str | None = None
    ) -> StoredFile: ...

    async def read(self, key: str) -> bytes: ...

    def stream(self, key: str, *, start: int = 0) -> AsyncIterator[bytes]: ...

    async def head(self, key: str) -> ObjectInfo | None: ...

    async def delete(self, key: str) -> None: ...

    async def presign(self, key: str, ttl_seconds: int) -> str | None:
        """A URL the client may fetch the object from directly, or None (serve it here)."""
        ...

    async def aclose(self) -> None: ...


class Urls:
    """Canonical URLs, shared by the backends: `{base_url}/files/{key}`."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def url_for(self, key: str) -> str:
        return f"{self.base_url}/files/{safe_key(key)}"

    def key_for_url(self, url: str) -> str | None:
        """The key of a URL this storage handed out (signed or not), or None for any
        other URL. It says nothing of whether the object still exists (see head)."""
        prefix = f"{self.base_url}/files/"
        if not isinstance(url, str) or not url.startswith(prefix):
            return None
        path = urlsplit(url[len(prefix) :]).path  # drops ?exp=..&sig=.. and ?v=..
        try:
            key = safe_key(path)
        except StorageError:
            return None
        return key if key == path else None
