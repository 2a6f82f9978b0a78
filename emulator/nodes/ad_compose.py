"""AdComposeVideo: comfygraph's ad-pipeline compositor, simulated with Pillow.

A custom node (as a real worker would install) that joins the approved clips (input
file names, one per line) at one size and frame rate, crossfades them, overlays the
product name and the call to action, and fits the optional music to the result.
Duration: sum of clip durations (each resampled to `fps`) minus one transition per join.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PIL import Image, ImageColor, ImageDraw, ImageFont

from comfygraph.emulator import media
from comfygraph.emulator.files import Files, file_digest
from comfygraph.emulator.nodes.base import (
    COMBO,
    FLOAT,
    INT,
    LINK,
    STRING,
    NodeContext,
    NodeDef,
    NodeResult,
    done,
)

FONTS = [
    "Inter-Bold",
    "Montserrat-ExtraBold",
    "Roboto-Medium",
    "PlayfairDisplay-Bold",
    "BebasNeue-Regular",
]


def clip_names(value: str) -> list[str]:
    return [line.strip() for line in str(value).splitlines() if line.strip()]


def _validate(inputs: Mapping[str, Any], files: Files) -> dict[str, str]:
    errors: dict[str, str] = {}
    names = clip_names(inputs.get("clips", ""))
    missing = [n for n in names if files.input_path(n) is None]
    if not names:
        errors["clips"] = "No clips given"
    elif missing:
        errors["clips"] = f"Invalid video file: {missing[0]}"
    try:
        ImageColor.getrgb(str(inputs.get("text_color", "")))
    except ValueError:
        errors["text_color"] = f"Invalid colour: {inputs.get('text_color')}"
    return errors


def _fingerprint(inputs: Mapping[str, Any], files: Files) -> str:
    paths = [files.input_path(n) for n in clip_names(inputs.get("clips", ""))]
    return ",".join(file_digest(p) for p in paths if p)


def _resampled(
    frames: list[Image.Image], source_fps: float, fps: float, size: tuple[int, int]
) -> list[Image.Image]:
    count = max(1, round(len(frames) / source_fps * fps))
    fitted = {
        n: media.fit(frames[n], *size)
        for n in {min(len(frames) - 1, int(k * source_fps / fps)) for k in range(count)}
    }
    return [fitted[min(len(frames) - 1, int(k * source_fps / fps))] for k in range(count)]


def join(clips: list[list[Image.Image]], overlap: int) -> list[Image.Image]:
    out = list(clips[0])
    for clip in clips[1:]:
        t = max(0, min(overlap, len(out) - 1, len(clip) - 1))
        blended = [Image.blend(out[len(out) - t + k], clip[k], (k + 1) / (t + 1)) for k in range(t)]
        out = out[: len(out) - t] + blended + list(clip[t:])
    return out


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow built without FreeType: fixed-size bitmap font
        return ImageFont.load_default()


def overlay(frames: list[Image.Image], i: dict[str, Any]) -> list[Image.Image]:
    colour = ImageColor.getrgb(i["text_color"])
    font = _font(i["font_size"])
    cta_from = len(frames) - max(1, round(len(frames) * 0.4))
    out = []
    for n, frame in enumerate(frames):
        picture = frame.copy()
        draw = ImageDraw.Draw(picture)
        w, h = picture.size
        draw.text((w // 2, h // 10), i["product_name"], fill=colour, font=font, anchor="mt")
        if n >= cta_from and i["call_to_action"]:
            draw.text(
                (w // 2, h - h // 10), i["call_to_action"], fill=colour, font=font, anchor="mb"
            )
        out.append(picture)
    return out


def compose(ctx: NodeContext, i: dict[str, Any]) -> tuple[list[Image.Image], media.Audio]:
    size, fps = (i["width"], i["height"]), i["fps"]
    clips = []
    for name in clip_names(i["clips"]):
        path = ctx.files.input_path(name)
        loaded = media.load_frames(path) if path else None
        frames, source_fps = loaded or ([Image.new("RGB", (256, 256), (128, 128, 128))] * 32, 16.0)
        clips.append(_resampled(frames, source_fps, fps, size))
    overlap = round(i["transition_seconds"] * fps) if i["transition"] == "crossfade" else 0
    frames = media.timecoded(overlay(join(clips, overlap), i))
    music: media.Audio | None = i.get("music")
    seconds = len(frames) / fps
    soundtrack = music.trimmed(seconds) if music else media.silence(seconds)
    return frames, soundtrack


async def compose_video(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    names = clip_names(i["clips"])
    for n in range(1, len(names) + 1):
        await ctx.work(0.3)
        await ctx.progress(n, len(names))
    frames, soundtrack = await ctx.offload(compose, ctx, i)
    return done(frames, float(i["fps"]), soundtrack)


NODES = [
    NodeDef(
        "AdComposeVideo",
        compose_video,
        {
            "clips": STRING(multiline=True, tooltip="Input video file names, one per line."),
            "product_name": STRING(""),
            "call_to_action": STRING("Shop now"),
            "text_color": STRING("#FFFFFF"),
            "text_font": COMBO(FONTS),
            "font_size": INT(48, 8, 256),
            "width": INT(720, 64, 3840, 8),
            "height": INT(1280, 64, 3840, 8),
            "fps": FLOAT(24.0, 1.0, 60.0, 1.0),
            "transition": COMBO(["crossfade", "cut"]),
            "transition_seconds": FLOAT(0.5, 0.0, 2.0, 0.05),
        },
        optional={"music": LINK("AUDIO"), "music_volume": FLOAT(0.8, 0.0, 1.0)},
        outputs=("IMAGE", "FLOAT", "AUDIO"),
        output_names=("frames", "fps", "soundtrack"),
        category="comfygraph/ads",
        python_module="custom_nodes.comfygraph_ads",
        display_name="Compose Ad Video",
        simulated=True,
        custom_validated=("clips", "text_color"),
        validate=_validate,
        fingerprint=_fingerprint,
    ),
]
