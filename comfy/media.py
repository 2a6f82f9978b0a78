"""Facts about an output file (kind, MIME type, size in pixels, duration), read from
its bytes with Pillow and the standard library: no ffprobe needed for the formats
ComfyUI's core nodes write (PNG/JPEG/WebP, animated WebP/GIF, WAV, FLAC)."""

from __future__ import annotations

import io
import mimetypes
import wave
from dataclasses import dataclass
from pathlib import PurePosixPath

from PIL import Image, UnidentifiedImageError

VIDEO_SUFFIXES = {".mp4", ".webm", ".mov", ".mkv", ".avi"}
AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a"}
TEXT_SUFFIXES = {".txt", ".json", ".csv", ".srt", ".vtt"}


@dataclass(frozen=True)
class MediaFacts:
    kind: str  # IMAGE | VIDEO | AUDIO | TEXT | FILE (the API's OutputKind)
    mime_type: str | None = None
    width: int | None = None
    height: int | None = None
    duration_seconds: float | None = None
    fps: int | None = None
    sample_rate: int | None = None


def inspect(filename: str, data: bytes) -> MediaFacts:
    suffix = PurePosixPath(filename).suffix.lower()
    mime = mimetypes.guess_type(filename)[0]
    if suffix == ".wav":
        return _wav(data, mime)
    if suffix == ".flac":
        return _flac(data, mime)
    if suffix in AUDIO_SUFFIXES:
        return MediaFacts("AUDIO", mime)
    if suffix in VIDEO_SUFFIXES:
        return MediaFacts("VIDEO", mime)
    if suffix in TEXT_SUFFIXES:
        return MediaFacts("TEXT", mime or "text/plain")
    return _image(data, mime)


def _image(data: bytes, mime: str | None) -> MediaFacts:
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            frames = getattr(img, "n_frames", 1)
            mime = Image.MIME.get(img.format or "", mime)
            if frames <= 1:
                return MediaFacts("IMAGE", mime, width, height)
            total_ms = 0
            for index in range(frames):
                img.seek(index)
                img.load()  # WebP reports a frame's duration only once it is decoded
                total_ms += int(img.info.get("duration", 0) or 0)
    except (UnidentifiedImageError, OSError):
        return MediaFacts("FILE", mime)
    duration = total_ms / 1000 if total_ms else None
    fps = round(frames / duration) if duration else None
    return MediaFacts("VIDEO", mime, width, height, duration, fps)


def _wav(data: bytes, mime: str | None) -> MediaFacts:
    try:
        with wave.open(io.BytesIO(data)) as w:
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
