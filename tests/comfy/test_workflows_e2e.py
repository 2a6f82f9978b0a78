"""Every built-in workflow runs end to end on the emulator and yields real, right-sized files.

The path is the one the server takes: validate -> upload inputs -> bind -> POST /prompt ->
wait for the end marker on the websocket -> GET /history -> GET /view each output.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from PIL import Image

from comfygraph.comfy.templates import bind, load_templates, validate
from comfygraph.emulator.nodes.sd import KONTEXT_RESOLUTIONS
from tests.comfy.conftest import Emulator, png_bytes, wav_bytes, webp_bytes, webp_facts

TEMPLATES = load_templates()
ALLOWED = "https://files.test/"
CLIP_FPS = 1000 / int(1000 / 12)  # what a 12 fps WebP reads back as (83 ms per frame)


@dataclass
class Case:
    values: dict[str, Any]
    uploads: dict[str, bytes | list[bytes]]
    check: Callable[[list[bytes], dict[str, Any]], None]
    extra: dict[str, Any] = field(default_factory=dict)


def png_of(size: tuple[int, int]) -> Callable[[list[bytes], dict[str, Any]], None]:
    def check(files: list[bytes], entry: dict[str, Any]) -> None:
        (content,) = files
        with Image.open(io.BytesIO(content)) as image:
            assert image.format == "PNG" and image.size == size

    return check


def video_of(
    frames: int, size: tuple[int, int], fps: float
) -> Callable[[list[bytes], dict[str, Any]], None]:
    def check(files: list[bytes], entry: dict[str, Any]) -> None:
        (content,) = files
        count, got_size, seconds = webp_facts(content)
        assert (count, got_size) == (frames, size)
        assert seconds == pytest.approx(frames * int(1000 / fps) / 1000)
        (output,) = entry["outputs"].values()
        assert output["animated"] == [True]

    return check


def caption(files: list[bytes], entry: dict[str, Any]) -> None:
    (content,) = files
    (output,) = entry["outputs"].values()
    text = content.decode()
    assert output["text"] == [text]
    assert text.startswith("ohwx woman, The image shows a character in a landscape picture")


PORTRAIT = png_bytes(96, 64)
kontext = min(KONTEXT_RESOLUTIONS, key=lambda wh: abs(96 / 64 - wh[0] / wh[1]))

CASES: dict[str, Case] = {
    "img2img": Case(
        {"prompt": "a watercolor painting", "strength": 0.5}, {"image": PORTRAIT}, png_of((96, 64))
    ),
    "style-transfer": Case(
        {"style_strength": 0.8},
        {"source_image": PORTRAIT, "style_image": png_bytes(50, 50, (10, 200, 30))},
        png_of((96, 64)),
    ),
    "image-edit": Case({"prompt": "make the sky purple"}, {"image": PORTRAIT}, png_of(kontext)),
    "product-image": Case(
        {"prompt": "a ceramic mug", "view_type": "side", "width": 256, "height": 320, "seed": 7},
        {},
        png_of((256, 320)),
    ),
    "character-caption": Case({"trigger_word": "ohwx woman"}, {"image": PORTRAIT}, caption),
    "lipsync-one": Case(
        {"width": 96, "height": 64, "steps": 3},
        {"image": PORTRAIT, "audio": wav_bytes(1.0)},
        video_of(25, (96, 64), 25.0),
    ),
    "lipsync-multi": Case(
        {"width": 96, "height": 64, "steps": 3, "audio_mode": "add"},
        {"image": PORTRAIT, "audio_1": wav_bytes(1.0), "audio_2": wav_bytes(0.6)},
        video_of(40, (96, 64), 25.0),
    ),
    "video-lipsync": Case(
        {"inference_steps": 4},
        {"video": webp_bytes(12, 12.0), "audio": wav_bytes(1.0)},
        video_of(round(1.5 * CLIP_FPS), (64, 48), CLIP_FPS),
    ),
    "wan-i2v": Case(
        {"prompt": "waves roll in", "width": 96, "height": 64, "length": 9, "fps": 8.0, "steps": 3},
        {"image": PORTRAIT},
        video_of(9, (96, 64), 8.0),
    ),
    "image-to-clip": Case(
        {"prompt": "slow push in", "duration_seconds": 1.0, "fps": 8.0, "width": 96, "height": 64},
        {"image": PORTRAIT},
        video_of(9, (96, 64), 8.0),
        {"camera_movement": "Zoom In", "motion_intensity": 1.5},
    ),
    "compose-ad": Case(
        {"product_name": "Glow Serum", "width": 96, "height": 160, "fps": 12.0},
        {"clips": [webp_bytes(12, 12.0), webp_bytes(9, 12.0)], "music": wav_bytes(3.0)},
        # 12 + 9 frames, minus a 0.5 s (6 frame) crossfade
        video_of(15, (96, 160), 12.0),
    ),
}


def test_every_builtin_has_a_case() -> None:
    assert sorted(CASES) == sorted(TEMPLATES.templates)


@pytest.mark.parametrize("name", sorted(CASES))
async def test_workflow_runs_end_to_end(emulator: Emulator, name: str) -> None:
    template = TEMPLATES.templates[name]
    case = CASES[name]
    urls: dict[str, Any] = {}
    worker_names: dict[str, Any] = {}
    for param, content in case.uploads.items():
        contents = content if isinstance(content, list) else [content]
        stored = [await emulator.upload(f"{param}_{n}.bin", c) for n, c in enumerate(contents)]
        urls[param] = (
            [ALLOWED + s for s in stored] if isinstance(content, list) else ALLOWED + stored[0]
        )
        worker_names[param] = stored if isinstance(content, list) else stored[0]
    clean, errors = validate(
        template, case.values | case.extra | urls, is_allowed_file=lambda u: u.startswith(ALLOWED)
    )
    assert errors == []
    graph = bind(template, clean, worker_names)

    socket = await emulator.connect(f"e2e-{name}")
    entry = await emulator.run(graph, socket, f"e2e-{name}")

    assert entry["status"]["status_str"] == "success", entry["status"]["messages"][-1]
    assert sorted(entry["outputs"]) == sorted(template.outputs)
    files = []
    for node_id in template.outputs:
        for key in ("images", "audio", "files"):
            for ref in entry["outputs"][node_id].get(key, []):
                response = await emulator.http.get("/view", params=ref)
                assert response.status_code == 200
                files.append(response.content)
    case.check(files, entry)


async def test_video_workflow_reports_progress_and_previews(emulator: Emulator) -> None:
    template = TEMPLATES.templates["wan-i2v"]
    stored = await emulator.upload("start.png", PORTRAIT)
    values = {
        "image": ALLOWED + stored,
        "prompt": "p",
        "width": 64,
        "height": 64,
        "length": 5,
        "steps": 4,
    }
    clean, _ = validate(template, values)
    socket = await emulator.connect("progress")
    prompt_id = await emulator.queue(bind(template, clean, {"image": stored}), "progress")
    await socket.done(prompt_id)
    ticks = [m.data for m in socket.of(prompt_id) if m.type == "progress"]
    assert [(t["value"], t["max"], t["node"]) for t in ticks] == [(n, 4, "11") for n in range(1, 5)]
    previews = [m for m in socket.messages if m.type == "binary:1"]
    assert len(previews) == 4 and all(p.data["image"][:2] == b"\xff\xd8" for p in previews)
