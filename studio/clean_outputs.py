"""Outputs stored without what a real ComfyUI embeds in them: SaveImage writes the whole
API-format graph (every template's internals and prompts) into each PNG's `prompt` and
`workflow` text chunks, SaveAnimatedWEBP into EXIF. Served unchanged, any user could
download the studio's workflows from any image.

The chunks are dropped from the container, byte for byte: pixels and animation are not
re-encoded. KEEP_OUTPUT_METADATA=true stores files as the worker wrote them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, cast

from comfygraph.storage.base import Chunks, Storage, StoredFile

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_DROPPED = {b"tEXt", b"zTXt", b"iTXt", b"eXIf"}
WEBP_DROPPED = {b"EXIF", b"XMP "}
_VP8X_EXIF, _VP8X_XMP = 0x08, 0x04


def strip_png(data: bytes) -> bytes:
    """The PNG without text and EXIF chunks; anything not a well-formed PNG unchanged."""
    if not data.startswith(PNG_SIGNATURE):
        return data
    out, at = [PNG_SIGNATURE], len(PNG_SIGNATURE)
    while at + 12 <= len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        end = at + 12 + length
        if end > len(data):
            return data  # truncated: not ours to repair
        if data[at + 4 : at + 8] not in PNG_DROPPED:
            out.append(data[at:end])
        at = end
    return b"".join(out) if at == len(data) else data


def strip_webp(data: bytes) -> bytes:
    """The WebP without EXIF and XMP chunks (and their VP8X flags)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return data
    chunks, at = [], 12
    while at + 8 <= len(data):
        fourcc = data[at : at + 4]
        (size,) = struct.unpack("<I", data[at + 4 : at + 8])
        end = at + 8 + size + (size & 1)
        if end > len(data):
            return data
        if fourcc == b"VP8X" and size >= 1:
            body = bytearray(data[at:end])
            body[8] &= ~(_VP8X_EXIF | _VP8X_XMP) & 0xFF
            chunks.append(bytes(body))
        elif fourcc not in WEBP_DROPPED:
            chunks.append(data[at:end])
        at = end
    payload = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(payload)) + payload


def strip_metadata(key: str, data: bytes) -> bytes:
    lower = key.lower()
    if lower.endswith(".png"):
        return strip_png(data)
    if lower.endswith(".webp"):
        return strip_webp(data)
    return data


@dataclass
class CleanStore:
    """A Storage that strips embedded metadata from the images put into it. Images are
    read whole to strip them (they are small); every other stream passes through."""

    inner: Storage

    async def put(self, key: str, chunks: Chunks, *, content_type: str | None = None) -> StoredFile:
        if key.lower().endswith((".png", ".webp")):
            if not isinstance(chunks, bytes):
                chunks = b"".join([chunk async for chunk in chunks])
            chunks = strip_metadata(key, chunks)
        return await self.inner.put(key, chunks, content_type=content_type)

    def __getattr__(self, name: str) -> Any:  # everything else the storage offers
        return getattr(self.inner, name)


def output_store(store: Storage, *, keep_metadata: bool) -> Storage:
    return store if keep_metadata else cast(Storage, CleanStore(store))
