"""Outputs are stored without the graph a real ComfyUI embeds (PNG text chunks, WebP
EXIF/XMP); the emulator writes those chunks as ComfyUI's savers do."""

from __future__ import annotations

import io
import json
from pathlib import Path

from PIL import Image

from comfygraph.emulator import media
from comfygraph.studio.clean_outputs import strip_metadata, strip_png, strip_webp

GRAPH = {"1": {"class_type": "KSampler", "inputs": {"seed": 5, "text": "secret recipe"}}}
META = {"prompt": json.dumps(GRAPH), "workflow": json.dumps({"nodes": [1, 2]})}


def test_png_text_chunks_are_dropped_pixels_kept(tmp_path: Path) -> None:
    image = Image.new("RGB", (32, 24), (200, 10, 90))
    media.write_png(tmp_path / "a.png", image, 4, META)
    raw = (tmp_path / "a.png").read_bytes()
    assert b"secret recipe" in raw
    assert set(Image.open(io.BytesIO(raw)).text) == {"prompt", "workflow"}  # type: ignore[attr-defined]
    clean = strip_png(raw)
    assert b"secret recipe" not in clean and b"workflow" not in clean
    out = Image.open(io.BytesIO(clean))
    assert out.text == {}  # type: ignore[attr-defined]
    assert out.tobytes() == image.tobytes()


def test_webp_exif_is_dropped_frames_kept(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (16, 16), (i * 40, 0, 0)) for i in range(3)]
    media.write_webp(tmp_path / "a.webp", frames, 8, lossless=True, quality=80, metadata=META)
    raw = (tmp_path / "a.webp").read_bytes()
    assert b"secret recipe" in raw
    clean = strip_webp(raw)
    assert b"secret recipe" not in clean and b"EXIF" not in clean
    out = Image.open(io.BytesIO(clean))
    assert out.n_frames == 3 and not out.getexif()  # type: ignore[attr-defined]
    out.seek(2)
    assert out.convert("RGB").getpixel((0, 0)) == (80, 0, 0)


def test_other_files_and_broken_images_pass_unchanged() -> None:
    assert strip_metadata("a.txt", b"prompt: x") == b"prompt: x"
    assert strip_metadata("a.png", b"\x89PNG\r\n\x1a\n\x00\x00") == b"\x89PNG\r\n\x1a\n\x00\x00"
    assert strip_metadata("a.webp", b"RIFF") == b"RIFF"
