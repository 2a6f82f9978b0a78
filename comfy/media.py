"""Facts about an output file (kind, MIME type, size in pixels, duration), read from the
file's headers: no ffprobe needed for the formats ComfyUI's core nodes write
(PNG/JPEG/WebP, animated WebP/GIF, WAV, FLAC).

Blocking file I/O: call `inspect_file` in a thread (studio/outputs.py does). Animated
WebP and GIF are never decoded: their containers give each frame's duration (WebP's
ANMF chunks, GIF's graphic control extensions), so a walk over the chunk headers is
enough however long the animation.
"""

from __future__ import annotations

import io
import mimetypes
import struct
import wave
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from PIL import Image, UnidentifiedImageError

VIDEO_SUFFIXES = {".mp4", ".webm", ".mov", ".mkv", ".avi"}
AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a"}
TEXT_SUFFIXES = {".txt", ".json", ".csv", ".srt", ".vtt"}
MAX_FRAMES = 1_000_000  # a corrupt container cannot make the walk endless


@dataclass(frozen=True)
class MediaFacts:
    kind: str  # IMAGE | VIDEO | AUDIO | TEXT | FILE (the API's OutputKind)
    mime_type: str | None = None
    width: int | None = None
    height: int | None = None
    duration_seconds: float | None = None
    fps: int | None = None
    sample_rate: int | None = None
    frames: int | None = None


def inspect(filename: str, data: bytes) -> MediaFacts:
    """The facts of a file held in memory (small files, tests)."""
    return _inspect(filename, io.BytesIO(data))


def inspect_file(filename: str, path: Path) -> MediaFacts:
    """The facts of a file on disk, reading its headers only (blocking: use a thread)."""
    with path.open("rb") as handle:
        return _inspect(filename, handle)


def _inspect(filename: str, handle: BinaryIO) -> MediaFacts:
    suffix = PurePosixPath(filename).suffix.lower()
    mime = mimetypes.guess_type(filename)[0]
    if suffix == ".wav":
        return _wav(handle, mime)
    if suffix == ".flac":
        return _flac(handle.read(26), mime)
    if suffix in AUDIO_SUFFIXES:
        return MediaFacts("AUDIO", mime)
    if suffix in VIDEO_SUFFIXES:
        return MediaFacts("VIDEO", mime)
    if suffix in TEXT_SUFFIXES:
        return MediaFacts("TEXT", mime or "text/plain")
    return _image(handle, mime)


def _image(handle: BinaryIO, mime: str | None) -> MediaFacts:
    try:
        with Image.open(handle) as img:  # lazy: reads the header, decodes nothing
            width, height = img.size
            fmt = img.format or ""
            mime = Image.MIME.get(fmt, mime)
    except (UnidentifiedImageError, OSError):
        return MediaFacts("FILE", mime)
    handle.seek(0)
    durations = (
        _webp_frames(handle) if fmt == "WEBP" else _gif_frames(handle) if fmt == "GIF" else []
    )
    if len(durations) <= 1:
        return MediaFacts("IMAGE", mime, width, height)
    total_ms = sum(durations)
    duration = total_ms / 1000 if total_ms else None
    fps = round(len(durations) / duration) if duration else None
    return MediaFacts("VIDEO", mime, width, height, duration, fps, frames=len(durations))


def _webp_frames(handle: BinaryIO) -> list[int]:
    """Each ANMF chunk's duration (ms), from the RIFF chunk headers alone."""
    header = handle.read(12)
    if header[:4] != b"RIFF" or header[8:12] != b"WEBP":
        return []
    durations: list[int] = []
    while len(durations) < MAX_FRAMES:
        chunk = handle.read(8)
        if len(chunk) < 8:
            break
        size = int.from_bytes(chunk[4:8], "little")
        if chunk[:4] == b"ANMF":
            frame = handle.read(16)  # x, y, width-1, height-1 (3 bytes each), duration
            if len(frame) < 16:
                break
            durations.append(int.from_bytes(frame[12:15], "little"))
            handle.seek(size + (size & 1) - 16, io.SEEK_CUR)
        else:
            handle.seek(size + (size & 1), io.SEEK_CUR)
    return durations


def _gif_frames(handle: BinaryIO) -> list[int]:
    """Each image's delay (ms) from the graphic control extensions; image data skipped."""
    header = handle.read(13)
    if len(header) < 13 or header[:3] != b"GIF":
        return []
    if header[10] & 0x80:  # a global colour table
        handle.seek(3 << ((header[10] & 0x07) + 1), io.SEEK_CUR)
    durations: list[int] = []
    delay = 0
    while len(durations) < MAX_FRAMES:
        introducer = handle.read(1)
        if introducer == b"!":  # an extension: label, then sub-blocks
            label = handle.read(1)
            if label == b"\xf9":
                block = handle.read(6)  # size 4, packed, delay (1/100 s), index, 0
                if len(block) < 6:
                    break
                delay = struct.unpack("<H", block[2:4])[0] * 10
            else:
                _skip_sub_blocks(handle)
        elif introducer == b",":  # an image: descriptor, colour table, LZW data
            descriptor = handle.read(9)
            if len(descriptor) < 9:
                break
            if descriptor[8] & 0x80:
                handle.seek(3 << ((descriptor[8] & 0x07) + 1), io.SEEK_CUR)
            handle.read(1)  # LZW minimum code size
            _skip_sub_blocks(handle)
            durations.append(delay)
            delay = 0
        else:  # ";" (the trailer), or the end of a truncated file
            break
    return durations


def _skip_sub_blocks(handle: BinaryIO) -> None:
    while size := handle.read(1):
        if size == b"\x00":
            return
        handle.seek(size[0], io.SEEK_CUR)


def _wav(handle: BinaryIO, mime: str | None) -> MediaFacts:
    try:
        with wave.open(handle) as w:  # the header only
            rate, frames = w.getframerate(), w.getnframes()
    except (wave.Error, EOFError):
        return MediaFacts("AUDIO", mime)
    return MediaFacts("AUDIO", "audio/wav", duration_seconds=frames / rate, sample_rate=rate)


def _flac(data: bytes, mime: str | None) -> MediaFacts:
    # STREAMINFO is the first metadata block: sample rate (20 bits) and total samples
    # (36 bits) sit at a fixed offset.
    if len(data) < 26 or data[:4] != b"fLaC":
        return MediaFacts("AUDIO", mime)
    info = int.from_bytes(data[18:26], "big")
    rate = info >> 44
    total = info & ((1 << 36) - 1)
    duration = total / rate if rate and total else None
    return MediaFacts("AUDIO", "audio/flac", duration_seconds=duration, sample_rate=rate or None)
