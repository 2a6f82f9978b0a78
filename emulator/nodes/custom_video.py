"""Simulated custom video nodes: LatentSync lipsync and its VideoLengthAdjuster.

VideoLengthAdjuster makes the clip exactly as long as the audio in every mode (plus
`silent_padding_sec` of silence in "normal"); the modes differ only in how frames are
filled: hold the last frame, loop, or play forwards and backwards.
"""

from __future__ import annotations

from typing import Any

from comfygraph.emulator import media
from comfygraph.emulator.nodes.base import (
    COMBO,
    FLOAT,
    INT,
    LINK,
    NodeContext,
    NodeDef,
    NodeResult,
    done,
)
from comfygraph.emulator.nodes.values import Images

_MODULE = "custom_nodes.ComfyUI-LatentSyncWrapper"


async def latent_sync(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    images: Images = i["images"]
    steps = i["inference_steps"]
    for step in range(1, steps + 1):
        await ctx.work(0.01 * len(images) / 16)
        await ctx.progress(step, steps, images[min(len(images) - 1, step * len(images) // steps)])
    # The mouth region is what LatentSync repaints; darken a band there so frames change.
    synced = await ctx.offload(
        lambda: media.timecoded([_mouth(im, n) for n, im in enumerate(images)])
    )
    return done(synced, i["audio"])


def _mouth(image: Any, frame: int) -> Any:
    out = image.copy()
    w, h = out.size
    band = (w // 3, (h * 2) // 3, (w * 2) // 3, (h * 2) // 3 + max(1, (h // 20) * (1 + frame % 3)))
    out.paste((40, 20, 20), band)
    return out


def frame_order(count: int, target: int, mode: str) -> list[int]:
    if count <= 0:
        return []
    if mode == "loop_to_audio":
        return [n % count for n in range(target)]
    if mode == "pingpong":
        cycle = list(range(count)) + list(range(count - 2, 0, -1)) or [0]
        return [cycle[n % len(cycle)] for n in range(target)]
    return [min(n, count - 1) for n in range(target)]


async def adjust_length(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    images: Images = i["images"]
    audio: media.Audio = i["audio"]
    fps = i["fps"]
    seconds = audio.seconds + (i["silent_padding_sec"] if i["mode"] == "normal" else 0.0)
    target = max(1, round(seconds * fps))
    order = frame_order(len(images), target, i["mode"])
    frames = await ctx.offload(media.timecoded, [images[n] for n in order])
    return done(frames, audio.trimmed(target / fps))


NODES = [
    NodeDef(
        "LatentSyncNode",
        latent_sync,
        {
            "images": LINK("IMAGE"),
            "audio": LINK("AUDIO"),
            "seed": INT(1247, 0, 0xFFFFFFFFFFFFFFFF),
            "lips_expression": FLOAT(1.5, 1.0, 3.0, 0.1),
            "inference_steps": INT(20, 1, 999),
        },
        outputs=("IMAGE", "AUDIO"),
        output_names=("images", "audio"),
        category="LatentSyncNode",
        python_module=_MODULE,
        display_name="LatentSync1.6 Node",
        simulated=True,
    ),
    NodeDef(
        "VideoLengthAdjuster",
        adjust_length,
        {
            "images": LINK("IMAGE"),
            "audio": LINK("AUDIO"),
            "mode": COMBO(["normal", "pingpong", "loop_to_audio"]),
            "fps": FLOAT(25.0, 1.0, 120.0, 0.1),
            "silent_padding_sec": FLOAT(0.5, 0.0, 3.0, 0.1),
        },
        outputs=("IMAGE", "AUDIO"),
        output_names=("images", "audio"),
        category="LatentSyncNode",
        python_module=_MODULE,
        display_name="Video Length Adjuster",
    ),
]
