"""Small real media made with Pillow and the stdlib: images, animated WebP, WAV, previews."""

from __future__ import annotations

import hashlib
import io
import math
import struct
import wave
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, ImageSequence, PngImagePlugin


@dataclass(frozen=True)
class Audio:
    """16-bit little-endian interleaved PCM, what SaveAudio writes out as WAV."""

    sample_rate: int
    channels: int
    pcm: bytes

    @property
    def frames(self) -> int:
        return len(self.pcm) // (2 * self.channels)

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate

    def trimmed(self, seconds: float) -> Audio:
        """Cut (or pad with silence) to exactly `seconds`."""
        want = max(0, round(seconds * self.sample_rate)) * 2 * self.channels
        pcm = self.pcm[:want] + bytes(max(0, want - len(self.pcm)))
        return Audio(self.sample_rate, self.channels, pcm)

    def __str__(self) -> str:  # how current_inputs shows it in an execution_error
        waveform = f"<{self.channels}x{self.frames} samples>"
        return f"{{'waveform': {waveform}, 'sample_rate': {self.sample_rate}}}"


def color_of(*parts: object) -> tuple[int, int, int]:
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return digest[0], digest[1], digest[2]


def synth_image(width: int, height: int, *parts: object) -> Image.Image:
    """A deterministic gradient whose colours come from `parts` (seed, prompt, ...)."""
    gradient = Image.linear_gradient("L").resize((max(1, width), max(1, height)))
    return ImageOps.colorize(gradient, color_of("a", *parts), color_of("b", *parts))


def fit(image: Image.Image, width: int, height: int) -> Image.Image:
    if image.size == (width, height):
        return image.convert("RGB")
    return ImageOps.fit(image.convert("RGB"), (max(1, width), max(1, height)))


def shifted(image: Image.Image, dx: int, dy: int) -> Image.Image:
    """One frame of simulated camera motion: the picture slid by (dx, dy), wrapping."""
    from PIL import ImageChops

    return ImageChops.offset(image, dx, dy)


def zoomed(image: Image.Image, factor: float) -> Image.Image:
    w, h = image.size
    cw, ch = max(1, round(w / factor)), max(1, round(h / factor))
    left, top = (w - cw) // 2, (h - ch) // 2
    return image.crop((left, top, left + cw, top + ch)).resize((w, h))


def timecoded(frames: Sequence[Image.Image]) -> list[Image.Image]:
    """Frames with their index drawn as 16 black/white cells along the bottom edge.

    libwebp merges identical consecutive frames into one longer frame; generated video
    never repeats a frame exactly, so neither may the emulator's.
    """
    out = []
    for index, frame in enumerate(frames):
        stamped = frame.convert("RGB")  # always a copy
        cell = max(1, min(4, stamped.width // 16))
        height = max(1, min(2, stamped.height))
        for bit in range(16):
            colour = (255, 255, 255) if index >> bit & 1 else (0, 0, 0)
            box = (bit * cell, stamped.height - height, (bit + 1) * cell, stamped.height)
            stamped.paste(colour, box)
        out.append(stamped)
    return out


def preview_jpeg(image: Image.Image, max_size: int = 512) -> bytes:
    """The JPEG a sampler preview carries (scaled to --preview-size like ComfyUI)."""
    picture = image.convert("RGB")
    picture.thumbnail((max_size, max_size))
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=70)
    return out.getvalue()


def write_png(
    path: Path,
    image: Image.Image,
    compress_level: int = 4,
    metadata: Mapping[str, str] | None = None,
) -> None:
    """As ComfyUI's SaveImage: one tEXt chunk per metadata entry ("prompt", "workflow")."""
    info = PngImagePlugin.PngInfo()
    for key, value in (metadata or {}).items():
        info.add_text(key, value)
    image.save(path, format="PNG", compress_level=compress_level, pnginfo=info)


def write_webp(
    path: Path,
    frames: Sequence[Image.Image],
    fps: float,
    *,
    lossless: bool,
    quality: int,
    metadata: Mapping[str, str] | None = None,
) -> None:
    """ComfyUI's SaveAnimatedWEBP: one file, `int(1000 / fps)` ms per frame, the prompt
    in EXIF tag 0x0110 ("prompt:{json}") and each extra entry from 0x010F downwards."""
    first, rest = frames[0], list(frames[1:])
    exif = first.getexif()
    tag = 0x010F
    for key, value in (metadata or {}).items():
        if key == "prompt":
            exif[0x0110] = f"prompt:{value}"
        else:
            exif[tag] = f"{key}:{value}"
            tag -= 1
    # method 0 (fastest) whatever the node asked: the bytes differ, the shape does not.
    first.save(
        path,
        format="WEBP",
        save_all=True,
        append_images=rest,
        duration=int(1000.0 / fps),
        loop=0,
        lossless=lossless,
        quality=quality,
        method=0,
        exif=exif,
    )


def load_frames(path: Path) -> tuple[list[Image.Image], float] | None:
    """Frames and fps of an animated image Pillow can read; None for other formats."""
    try:
        with Image.open(path) as handle:
            frames = [frame.convert("RGB") for frame in ImageSequence.Iterator(handle)]
            duration_ms = handle.info.get("duration") or 0
    except OSError:
        return None
    fps = 1000.0 / duration_ms if duration_ms else 24.0
    return frames, fps


def tone(seconds: float, sample_rate: int = 44100, channels: int = 2, hz: float = 220.0) -> Audio:
    """A quiet sine: audible proof that the WAV holds the requested duration."""
    count = max(0, round(seconds * sample_rate))
    period = max(1, round(sample_rate / hz))
    frame = struct.Struct("<" + "h" * channels)
    cycle = b"".join(
        frame.pack(*([int(3000 * math.sin(2 * math.pi * i / period))] * channels))
        for i in range(period)
    )
    width = 2 * channels
    pcm = cycle * (count // period + 1)
    return Audio(sample_rate, channels, pcm[: count * width])


def silence(seconds: float, sample_rate: int = 44100, channels: int = 2) -> Audio:
    return Audio(sample_rate, channels, bytes(round(seconds * sample_rate) * 2 * channels))


def write_wav(path: Path, audio: Audio) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(audio.channels)
        out.setsampwidth(2)
        out.setframerate(audio.sample_rate)
        out.writeframes(audio.pcm)


def read_wav(path: Path) -> Audio | None:
    """16-bit WAV as Audio; None when the file is another format (mp3, flac, ...)."""
    try:
        with wave.open(str(path), "rb") as handle:
            if handle.getsampwidth() != 2:
                return None
            return Audio(
                handle.getframerate(),
                handle.getnchannels(),
                handle.readframes(handle.getnframes()),
            )
    except (wave.Error, EOFError):
        return None
