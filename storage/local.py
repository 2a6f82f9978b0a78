"""Where inputs and outputs are stored (STORAGE_URL). Local files by default, served
at /files/...; keys look like `workflows/{workflow}/{job_id}/{filename}` (seed 001).

Keys are sanitised here, once: no absolute paths, no `..`, only a safe character set,
so neither an uploaded file's name nor a worker's output name can escape the root.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
import unicodedata
from collections.abc import AsyncIterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class StorageError(Exception):
    pass


@dataclass(frozen=True)
class StoredFile:
    key: str
    url: str
    size: int


def safe_name(name: str, *, default: str = "file") -> str:
    """A file name reduced to [A-Za-z0-9._-], without leading dots or path parts."""
    base = unicodedata.normalize("NFKD", name.replace("\\", "/").rsplit("/", 1)[-1])
    cleaned = _UNSAFE.sub("_", base.encode("ascii", "ignore").decode()).strip("._")
    return cleaned[:120] or default


def safe_key(key: str) -> str:
    parts = [p for p in key.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        raise StorageError(f"unsafe storage key {key!r}")
    return "/".join(safe_name(p) for p in parts)


class LocalStorage:
    """Files under `root`, public at `{base_url}/files/{key}`."""

    def __init__(self, root: Path, base_url: str) -> None:
        self.root = root.resolve()
        self.base_url = base_url.rstrip("/")

    def path_for(self, key: str) -> Path:
        path = (self.root / safe_key(key)).resolve()
        if self.root not in path.parents:
            raise StorageError(f"unsafe storage key {key!r}")
        return path

    def url_for(self, key: str) -> str:
        return f"{self.base_url}/files/{safe_key(key)}"

    def key_for_url(self, url: str) -> str | None:
        """The key of a URL this storage handed out, or None for any other URL."""
        prefix = f"{self.base_url}/files/"
        if not url.startswith(prefix):
            return None
        try:
            key = safe_key(url[len(prefix) :])
        except StorageError:
            return None
        return key if self.path_for(key).is_file() else None

    async def put(self, key: str, chunks: bytes | AsyncIterable[bytes]) -> StoredFile:
        """Write atomically (temp file, then rename): readers never see half a file."""
        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                if isinstance(chunks, bytes):
                    await asyncio.to_thread(out.write, chunks)
                    size = len(chunks)
                else:
                    async for chunk in chunks:
                        await asyncio.to_thread(out.write, chunk)
                        size += len(chunk)
            os.replace(tmp, path)
        except BaseException:
            await asyncio.to_thread(Path(tmp).unlink, missing_ok=True)
            raise
        relative = str(path.relative_to(self.root))
        return StoredFile(relative, self.url_for(relative), size)

    async def read(self, key: str) -> bytes:
        return await asyncio.to_thread(self.path_for(key).read_bytes)


def open_storage(storage_url: str, base_url: str) -> LocalStorage:
    parts = urlsplit(storage_url)
    if parts.scheme == "file":
        root = Path(parts.netloc + parts.path) if parts.netloc else Path(parts.path)
        root.mkdir(parents=True, exist_ok=True)
        return LocalStorage(root, base_url)
    raise StorageError(f"STORAGE_URL scheme {parts.scheme!r} is not supported yet (use file://)")
