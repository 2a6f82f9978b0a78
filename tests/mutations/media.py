"""Small files of every type uploadFile accepts, and some it must refuse. Images come
from Pillow and WAV from the standard library; the container formats are the header
bytes their specifications give (enough for sniffing, which is all these are for)."""

from __future__ import annotations

import io
import random
import struct
import wave

from PIL import Image


def image(fmt: str, size: tuple[int, int] = (64, 48), **options: object) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 80, 40)).save(out, format=fmt, **options)
    return out.getvalue()


def png(size: tuple[int, int] = (64, 48)) -> bytes:
    return image("PNG", size)


def animated_webp(frames: int = 3) -> bytes:
    images = [Image.new("RGB", (32, 24), (40 * n, 100, 150)) for n in range(frames)]
    out = io.BytesIO()
    images[0].save(out, format="WEBP", save_all=True, append_images=images[1:], duration=100)
    return out.getvalue()


def wav(seconds: float = 0.1, rate: int = 8000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(b"\x00\x00" * int(seconds * rate))
    return out.getvalue()


def flac() -> bytes:
    # "fLaC", then the last-metadata-block flag with STREAMINFO (type 0, 34 bytes).
    info = struct.pack(">HH", 4096, 4096) + b"\x00" * 6 + (44100 << 44 | 1 << 36).to_bytes(8)
    return b"fLaC" + b"\x80\x00\x00\x22" + info + b"\x00" * 16


def mp3(frames: int = 3, *, id3: bool = True) -> bytes:
    # MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, no padding: 144 * 128000 // 44100 = 417 bytes.
    frame = b"\xff\xfb\x90\x00" + b"\x00" * 413
    tag = b"ID3\x04\x00\x00" + bytes([0, 0, 0, 20]) + b"\x00" * 20 if id3 else b""
    return tag + frame * frames


def ogg() -> bytes:
    page = b"OggS\x00\x02" + b"\x00" * 8 + b"\x01\x00\x00\x00" + b"\x00" * 8 + b"\x01\x1e"
    return page + b"\x01vorbis" + b"\x00" * 23


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def mp4(brand: bytes = b"isom") -> bytes:
    ftyp = _box(b"ftyp", brand + b"\x00\x00\x02\x00" + b"isomiso2avc1mp41")
    return ftyp + _box(b"free", b"") + _box(b"mdat", b"\x00" * 64)


def mov() -> bytes:
    return mp4(b"qt  ")


def _ebml(doc_type: bytes) -> bytes:
    body = (b"\x42\x86\x81\x01" b"\x42\xf7\x81\x01" b"\x42\xf2\x81\x04" b"\x42\xf3\x81\x08"
            + b"\x42\x82" + bytes([0x80 | len(doc_type)]) + doc_type
            + b"\x42\x87\x81\x04" b"\x42\x85\x81\x02")  # fmt: skip
    header = b"\x1a\x45\xdf\xa3" + bytes([0x80 | len(body)]) + body
    return header + b"\x18\x53\x80\x67" + b"\x00" * 32  # then a Segment


def webm() -> bytes:
    return _ebml(b"webm")


def mkv() -> bytes:
    return _ebml(b"matroska")


def noise(size: int = 4096, seed: int = 7) -> bytes:
    return b"\x00NOISE" + random.Random(seed).randbytes(size)


# name -> (bytes, the MIME type the server must report)
SUPPORTED: dict[str, tuple[bytes, str]] = {
    "png": (png(), "image/png"),
    "jpeg": (image("JPEG"), "image/jpeg"),
    "webp": (image("WEBP"), "image/webp"),
    "animated-webp": (animated_webp(), "image/webp"),
    "gif": (image("GIF"), "image/gif"),
    "wav": (wav(), "audio/wav"),
    "flac": (flac(), "audio/flac"),
    "mp3": (mp3(), "audio/mpeg"),
    "mp3-no-tag": (mp3(id3=False), "audio/mpeg"),
    "ogg": (ogg(), "audio/ogg"),
    "mp4": (mp4(), "video/mp4"),
    "mov": (mov(), "video/quicktime"),
    "webm": (webm(), "video/webm"),
}

UNSUPPORTED: dict[str, bytes] = {
    "noise": noise(),
    "text": b"hello, this is only text\n" * 10,
    "pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n",
    "zip": b"PK\x03\x04" + b"\x00" * 60,
    "matroska": mkv(),
    "heic": mp4(b"heic"),
    "m4a": mp4(b"M4A "),
    "mp3-lookalike": b"\xff\xfb\x90\x00" + b"\x00" * 413 + b"not a frame" * 10,
    "svg": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
}
