"""Local files (STORAGE_URL=file:///path, the default): one file per key under a root.
Writes are atomic (a temp file, then a rename), so readers never see half a file."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from comfygraph.storage.base import Chunks, ObjectInfo, StoredFile, Urls
from comfygraph.storage.keys import StorageError, safe_key

READ_CHUNK = 256 * 1024


class LocalStorage(Urls):
    """Files under `root`, served by the app at `{base_url}/files/{key}`."""

    def __init__(self, root: Path, base_url: str) -> None:
        super().__init__(base_url)
        self.root = root.resolve()

    def path_for(self, key: str) -> Path:
        path = (self.root / safe_key(key)).resolve()
        if self.root not in path.parents:
            raise StorageError(f"unsafe storage key {key[:200]!r}")
        return path

    async def put(self, key: str, chunks: Chunks, *, content_type: str | None = None) -> StoredFile:
        path = self.path_for(key)
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
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
            await asyncio.to_thread(_remove_empty_parents, path.parent, self.root)
            raise
        relative = str(path.relative_to(self.root))
        return StoredFile(relative, self.url_for(relative), size)

    async def read(self, key: str) -> bytes:
        return await asyncio.to_thread(self.path_for(key).read_bytes)

    async def stream(self, key: str, *, start: int = 0) -> AsyncIterator[bytes]:
        handle = await asyncio.to_thread(self.path_for(key).open, "rb")
        try:
            if start:
                handle.seek(start)
            while chunk := await asyncio.to_thread(handle.read, READ_CHUNK):
                yield chunk
        finally:
            handle.close()

    async def head(self, key: str) -> ObjectInfo | None:
        try:
            path = self.path_for(key)
            stat = await asyncio.to_thread(path.stat)
        except (StorageError, OSError):
            return None
        if not path.is_file():
            return None
        return ObjectInfo(safe_key(key), stat.st_size)

    async def delete(self, key: str) -> None:
        path = self.path_for(key)
        await asyncio.to_thread(path.unlink, missing_ok=True)
        await asyncio.to_thread(_remove_empty_parents, path.parent, self.root)

    async def presign(self, key: str, ttl_seconds: int) -> str | None:
        return None  # the app serves local files itself

    async def aclose(self) -> None:
        return None


def _remove_empty_parents(folder: Path, root: Path) -> None:
    """Folders a refused write made for its key (uploads/{owner}/{random}) go too."""
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
