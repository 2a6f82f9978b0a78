"""ComfyUI core load/save nodes, really executed: files in, real files out.

Deviations kept on purpose (the wire shapes are unchanged): SaveAudio writes WAV (ComfyUI
writes FLAC); audio files other than 16-bit WAV load as 5 s of silence, and videos Pillow
cannot read (mp4, webm, ...) load as 2 s of grey 256x256 frames at 16 fps.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps, ImageSequence

from comfygraph.emulator import media
from comfygraph.emulator.files import (
    AUDIO_EXTENSIONS,
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    Files,
    file_digest,
)
from comfygraph.emulator.nodes.base import (
    BOOLEAN,
    COMBO,
    FLOAT,
    INT,
    LINK,
    STRING,
    InputSpec,
    NodeContext,
    NodeDef,
    NodeResult,
    done,
)
from comfygraph.emulator.nodes.values import Images, Video

PREFIX_TOOLTIP = (
    "The prefix for the file to save. This may include formatting information such as "
    "%date:yyyy-MM-dd% or %Empty Latent Image.width% to include values from nodes."
)


def _input_combo(extensions: tuple[str, ...], flag: str) -> Any:
    def spec(files: Files) -> InputSpec:
        return [files.listing(extensions), {flag: True}]

    return spec


def _exists(input_name: str, label: str) -> Any:
    def check(inputs: Mapping[str, Any], files: Files) -> dict[str, str]:
        value = inputs.get(input_name, "")
        if files.input_path(str(value)) is None:
            return {input_name: f"Invalid {label} file: {value}"}
        return {}

    return check


def _digest_of(input_name: str) -> Any:
    def fingerprint(inputs: Mapping[str, Any], files: Files) -> str:
        path = files.input_path(str(inputs.get(input_name, "")))
        return file_digest(path) if path else ""

    return fingerprint


def _path(ctx: NodeContext, name: str) -> Path:
    path = ctx.files.input_path(name)
    if path is None:  # validated before queueing, but the file may vanish since
        raise FileNotFoundError(f"No such file: {name}")
    return path


def _read_image(path: Path) -> tuple[Images, list[Image.Image]]:
    with Image.open(path) as handle:
        frames = [
            ImageOps.exif_transpose(f.copy()) or f.copy() for f in ImageSequence.Iterator(handle)
        ]
    images = [f.convert("RGB") for f in frames]
    masks = [
        ImageOps.invert(f.getchannel("A")) if "A" in f.getbands() else Image.new("L", (64, 64), 0)
        for f in frames
    ]
    return images, masks


async def load_image(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    images, masks = await ctx.offload(_read_image, _path(ctx, i["image"]))
    return done(images, masks)


def _save_images(
    files: Files,
    folder: Path,
    kind: str,
    prefix: str,
    images: Images,
    level: int,
    metadata: dict[str, str] | None = None,
) -> list[dict[str, str]]:
    first = images[0]
    where = files.save_path(prefix, folder, first.width, first.height)
    results, counter = [], where.counter
    for number, image in enumerate(images):
        name = f"{where.filename.replace('%batch_num%', str(number))}_{counter:05}_.png"
        media.write_png(where.folder / name, image, level, metadata)
        results.append({"filename": name, "subfolder": where.subfolder, "type": kind})
        counter += 1
    return results


async def save_image(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    args = (ctx.files, ctx.files.output, "output", i["filename_prefix"], i["images"], 4)
    return done(ui={"images": await ctx.offload(_save_images, *args, ctx.metadata)})


async def preview_image(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    prefix = "ComfyUI_temp_" + "".join(random.choice(string.ascii_lowercase) for _ in range(5))
    args = (ctx.files, ctx.files.temp, "temp", prefix, i["images"], 1)
    return done(ui={"images": await ctx.offload(_save_images, *args, ctx.metadata)})


def _save_webp(ctx: NodeContext, i: dict[str, Any]) -> dict[str, Any]:
    images: Images = i["images"]
    where = ctx.files.save_path(
        i["filename_prefix"], ctx.files.output, images[0].width, images[0].height
    )
    name = f"{where.filename}_{where.counter:05}_.webp"
    media.write_webp(
        where.folder / name,
        images,
        i["fps"],
        lossless=i["lossless"],
        quality=i["quality"],
        metadata=ctx.metadata,
    )
    file = {"filename": name, "subfolder": where.subfolder, "type": "output"}
    return {"images": [file], "animated": [len(images) != 1]}


async def save_webp(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    return done(ui=await ctx.offload(_save_webp, ctx, i))


async def load_audio(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    audio = await ctx.offload(media.read_wav, _path(ctx, i["audio"]))
    return done(audio or media.silence(5.0))


async def empty_audio(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    return done(media.silence(i["duration"], i["sample_rate"], i["channels"]))


def _save_wav(ctx: NodeContext, prefix: str, audio: media.Audio) -> dict[str, Any]:
    where = ctx.files.save_path(prefix, ctx.files.output)
    name = f"{where.filename.replace('%batch_num%', '0')}_{where.counter:05}_.wav"
    media.write_wav(where.folder / name, audio)
    return {"audio": [{"filename": name, "subfolder": where.subfolder, "type": "output"}]}


async def save_audio(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    return done(ui=await ctx.offload(_save_wav, ctx, i["filename_prefix"], i["audio"]))


def _read_video(path: Path) -> Video:
    loaded = media.load_frames(path)
    if loaded is None:
        grey = Image.new("RGB", (256, 256), (128, 128, 128))
        return Video(tuple(grey for _ in range(32)), 16.0)
    frames, fps = loaded
    return Video(tuple(frames), fps)


async def load_video(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    return done(await ctx.offload(_read_video, _path(ctx, i["file"])))


async def video_components(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    video: Video = i["video"]
    audio = video.audio or media.silence(len(video.frames) / video.fps)
    return done(list(video.frames), audio, float(video.fps))


async def preview_any(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    value = i.get("source")
    if isinstance(value, str):
        text = value
    elif isinstance(value, (int, float, bool)) or value is None:
        text = str(value)
    else:
        try:
            text = json.dumps(value, indent=4)
        except TypeError:
            text = str(value)
    return done(ui={"text": [text]})


IMAGE = LINK("IMAGE")
_SAVE_IMAGES = LINK("IMAGE", tooltip="The images to save.")

NODES = [
    NodeDef(
        "LoadImage",
        load_image,
        {"image": _input_combo(IMAGE_EXTENSIONS, "image_upload")},
        outputs=("IMAGE", "MASK"),
        category="image",
        display_name="Load Image",
        custom_validated=("image",),
        validate=_exists("image", "image"),
        fingerprint=_digest_of("image"),
    ),
    NodeDef(
        "SaveImage",
        save_image,
        {"images": _SAVE_IMAGES, "filename_prefix": STRING("ComfyUI", tooltip=PREFIX_TOOLTIP)},
        output_node=True,
        category="image",
        display_name="Save Image",
        description="Saves the input images to your ComfyUI output directory.",
    ),
    NodeDef(
        "PreviewImage",
        preview_image,
        {"images": _SAVE_IMAGES},
        output_node=True,
        category="image",
        display_name="Preview Image",
        description="Saves the input images to your ComfyUI output directory.",
    ),
    NodeDef(
        "SaveAnimatedWEBP",
        save_webp,
        {
            "images": IMAGE,
            "filename_prefix": STRING("ComfyUI"),
            "fps": FLOAT(6.0, 0.01, 1000.0),
            "lossless": BOOLEAN(True),
            "quality": INT(80, 0, 100),
            "method": COMBO(["default", "fastest", "slowest"]),
        },
        output_node=True,
        category="image/animation",
        python_module="comfy_extras.nodes_images",
    ),
    NodeDef(
        "LoadAudio",
        load_audio,
        {"audio": _input_combo(AUDIO_EXTENSIONS + VIDEO_EXTENSIONS, "audio_upload")},
        outputs=("AUDIO",),
        category="audio",
        python_module="comfy_extras.nodes_audio",
        display_name="Load Audio",
        custom_validated=("audio",),
        validate=_exists("audio", "audio"),
        fingerprint=_digest_of("audio"),
    ),
    NodeDef(
        "EmptyAudio",
        empty_audio,
        {
            "duration": FLOAT(60.0, 0.0, 0xFFFFFFFF),
            "sample_rate": INT(48000, 1, 192000),
            "channels": INT(2, 1, 2),
        },
        outputs=("AUDIO",),
        category="audio",
        python_module="comfy_extras.nodes_audio",
        display_name="Empty Audio",
    ),
    NodeDef(
        "SaveAudio",
        save_audio,
        {"audio": LINK("AUDIO"), "filename_prefix": STRING("audio/ComfyUI")},
        output_node=True,
        category="audio",
        python_module="comfy_extras.nodes_audio",
        display_name="Save Audio (FLAC)",
    ),
    NodeDef(
        "LoadVideo",
        load_video,
        {"file": _input_combo(VIDEO_EXTENSIONS, "video_upload")},
        outputs=("VIDEO",),
        category="image/video",
        python_module="comfy_extras.nodes_video",
        display_name="Load Video",
        custom_validated=("file",),
        validate=_exists("file", "video"),
        fingerprint=_digest_of("file"),
    ),
    NodeDef(
        "GetVideoComponents",
        video_components,
        {"video": LINK("VIDEO")},
        outputs=("IMAGE", "AUDIO", "FLOAT"),
        output_names=("images", "audio", "fps"),
        category="image/video",
        python_module="comfy_extras.nodes_video",
        display_name="Get Video Components",
    ),
    NodeDef(
        "PreviewAny",
        preview_any,
        {"source": ["*", {}]},
        output_node=True,
        category="utils",
        python_module="comfy_extras.nodes_preview_any",
        display_name="Preview Any",
    ),
]
