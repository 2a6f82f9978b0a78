"""Where outputs and uploads are kept (STORAGE_URL): local files or an S3-compatible
store, behind one interface (storage.base.Storage)."""

from pathlib import Path
from urllib.parse import urlsplit

from comfygraph.storage.base import Chunks, ObjectInfo, Storage, StoredFile
from comfygraph.storage.keys import StorageError, safe_key, safe_name
from comfygraph.storage.local import LocalStorage
from comfygraph.storage.s3 import S3Options, S3Storage


def open_storage(storage_url: str, base_url: str, s3: S3Options | None = None) -> Storage:
    parts = urlsplit(storage_url)
    if parts.scheme == "file":
        root = Path(parts.netloc + parts.path) if parts.netloc else Path(parts.path)
        root.mkdir(parents=True, exist_ok=True)
        return LocalStorage(root, base_url)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise StorageError("STORAGE_URL s3:// needs a bucket: s3://bucket/prefix")
        return S3Storage(parts.netloc, parts.path, base_url, s3 or S3Options())
    raise StorageError(f"STORAGE_URL scheme {parts.scheme!r} is not supported (file://, s3://)")


__all__ = [
    "Chunks",
    "LocalStorage",
    "ObjectInfo",
    "S3Options",
    "S3Storage",
    "Storage",
    "StorageError",
    "StoredFile",
    "open_storage",
    "safe_key",
    "safe_name",
]
