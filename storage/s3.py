"""S3-compatible object storage (STORAGE_URL=s3://bucket/prefix): AWS S3, MinIO,
Cloudflare R2, or any store speaking the S3 protocol at S3_ENDPOINT_URL.

Through obstore (Rust's object_store): native async, puts that stream an async
iterable as a multipart upload (5 MiB parts, never the whole file in memory), gets
that stream, and presigned URLs, with retries and the usual AWS_* credentials.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import obstore
from obstore.exceptions import NotFoundError
from obstore.store import S3Store

from comfygraph.storage.base import Chunks, ObjectInfo, StoredFile, Urls
from comfygraph.storage.keys import safe_key

PART_BYTES = 5 * 1024 * 1024  # S3's smallest multipart part
_INLINE = ("image", "video", "audio")


@dataclass(frozen=True)
class S3Options:
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None


class S3Storage(Urls):
    def __init__(self, bucket: str, prefix: str, base_url: str, options: S3Options) -> None:
        super().__init__(base_url)
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        config: dict[str, Any] = {}
        if options.endpoint_url:
            config["endpoint"] = options.endpoint_url
        if options.region:
            config["region"] = options.region
        if options.access_key_id:
            config["access_key_id"] = options.access_key_id
        if options.secret_access_key:
            config["secret_access_key"] = options.secret_access_key
        if options.session_token:
            config["session_token"] = options.session_token
        http = bool(options.endpoint_url and options.endpoint_url.startswith("http://"))
        # Values not given here come from the environment (AWS_*), as the SDKs do.
        self.store = S3Store(
            bucket,
            prefix=self.prefix or None,
            config=config,  # type: ignore[arg-type]
            client_options={"allow_http": http},
        )

    def _path(self, key: str) -> str:
        return safe_key(key)

    async def put(self, key: str, chunks: Chunks, *, content_type: str | None = None) -> StoredFile:
        path = self._path(key)
        # What the presigned GET answers with: media inline, anything else a download.
        media = content_type is not None and content_type.split("/", 1)[0] in _INLINE
        attributes: dict[str, str] = {
            "Content-Type": content_type if media and content_type else "application/octet-stream",
            "Content-Disposition": "inline" if media else "attachment",
        }
        if isinstance(chunks, bytes):
            await obstore.put_async(self.store, path, chunks, attributes=attributes)
            return StoredFile(path, self.url_for(path), len(chunks))
        counted = _Counted(chunks)
        # A failing iterator aborts the multipart upload: nothing is left in the bucket.
        await obstore.put_async(
            self.store,
            path,
            counted,
            attributes=attributes,
            chunk_size=PART_BYTES,
            max_concurrency=4,
        )
        if counted.error is not None:  # obstore may wrap the iterator's own exception
            raise counted.error
        return StoredFile(path, self.url_for(path), counted.size)

    async def read(self, key: str) -> bytes:
        result = await obstore.get_async(self.store, self._path(key))
        return bytes(await result.bytes_async())

    async def stream(self, key: str, *, start: int = 0) -> AsyncIterator[bytes]:
        options: Any = {"range": {"offset": start}} if start else None
        result = await obstore.get_async(self.store, self._path(key), options=options)
        async for chunk in result.stream(min_chunk_size=256 * 1024):
            yield bytes(chunk)

    async def head(self, key: str) -> ObjectInfo | None:
        try:
            meta = await obstore.head_async(self.store, self._path(key))
        except (NotFoundError, FileNotFoundError):
            return None
        return ObjectInfo(self._path(key), int(meta["size"]))

    async def delete(self, key: str) -> None:
        with contextlib.suppress(NotFoundError, FileNotFoundError):
            await obstore.delete_async(self.store, self._path(key))

    async def presign(self, key: str, ttl_seconds: int) -> str | None:
        url = await obstore.sign_async(
            self.store, "GET", self._path(key), timedelta(seconds=ttl_seconds)
        )
        return str(url)

    async def aclose(self) -> None:
        return None


class _Counted:
    """An async iterable that counts what passes and keeps the exception that ended it."""

    def __init__(self, chunks: Any) -> None:
        self._chunks = chunks
        self.size = 0
        self.error: BaseException | None = None

    def __aiter__(self) -> _Counted:
        self._iter = aiter(self._chunks)
        return self

    async def __anext__(self) -> bytes:
        try:
            chunk = await anext(self._iter)
        except StopAsyncIteration:
            raise
        except BaseException as exc:
            self.error = exc
            raise
        self.size += len(chunk)
        return chunk
