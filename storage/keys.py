"""Storage keys, sanitised once for every backend: no absolute paths, no `..`, only a
safe character set, so neither an uploaded file's name nor a worker's output name can
escape the root (or the bucket prefix)."""

from __future__ import annotations

import re
import unicodedata

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_KEY_PARTS = 16  # ours have at most 4 (`uploads/{owner}/{random}/{name}`)


class StorageError(Exception):
    pass


def safe_name(name: str, *, default: str = "file") -> str:
    """A file name reduced to [A-Za-z0-9._-], without leading dots or path parts."""
    base = unicodedata.normalize("NFKD", name.replace("\\", "/").rsplit("/", 1)[-1])
    cleaned = _UNSAFE.sub("_", base.encode("ascii", "ignore").decode()).strip("._")
    return cleaned[:120] or default


def safe_key(key: str) -> str:
    parts = [p for p in key.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or len(parts) > MAX_KEY_PARTS or any(p == ".." for p in parts):
        raise StorageError(f"unsafe storage key {key[:200]!r}")
    return "/".join(safe_name(p) for p in parts)
