"""Outputs stored without what a real ComfyUI embeds in them: SaveImage writes the whole
API-format graph (every template's internals and prompts) into each PNG's `prompt` and
`workflow` text chunks, SaveAnimatedWEBP into EXIF. Served unchanged, any user could
download the studio's workflows from any image.

The chunks are dropped from the container, byte for byte: pixels and animation are not
re-encoded. KEEP_OUTPUT_METADATA=true stores files as the worker wrote them.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterable
from dataclasses import dataclass
from typing import Any

from comfygraph.comfy.outputs import Store, StoredFileLike

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
    """A Store that strips embedded metadata from the images put into it."""

    inner: Store

    async def put(self, key: str, chunks: bytes | AsyncIterable[bytes]) -> StoredFileLike:
        if isinstance(chunks, bytes):
            chunks = strip_metadata(key, chunks)
        return await self.inner.put(key, chunks)

    async def read(self, key: str) -> bytes:
        return await self.inner.read(key)

    def key_for_url(self, url: str) -> str | None:
        return self.inner.key_for_url(url)

    def url_for(self, key: str) -> str:
        return self.inner.url_for(key)

    def __getattr__(self, name: str) -> Any:  # anything else the store offers
        return getattr(self.inner, name)


def output_store(store: Store, *, keep_metadata: bool) -> Store:
    return store if keep_metadata else CleanStore(store)
