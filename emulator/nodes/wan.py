"""Simulated Wan 2.1 core nodes: image-to-video and the Fun-Camera variant."""

from __future__ import annotations

from typing import Any

from comfygraph.emulator.catalog import files_in
from comfygraph.emulator.nodes.base import COMBO, FLOAT, INT, LINK, NodeDef
from comfygraph.emulator.nodes.simulate import loader, quick
from comfygraph.emulator.nodes.values import Conditioning, Embeds, Latent

CAMERA_POSES = [
    "Static", "Pan Up", "Pan Down", "Pan Left", "Pan Right", "Zoom In", "Zoom Out",
    "Anti Clockwise (ACW)", "ClockWise (CW)",
]  # fmt: skip
_WAN = "comfy_extras.nodes_wan"
_COND = LINK("CONDITIONING")


def wan_frames(length: int) -> int:
    """Wan's VAE keeps every 4th frame after the first: 81 -> 81, 50 -> 49."""
    return ((max(1, length) - 1) // 4) * 4 + 1


def _video_latent(i: dict[str, Any], camera: Embeds | None) -> tuple[Any, ...]:
    positive: Conditioning = i["positive"]
    start = i.get("start_image") or []
    data = camera.data if camera else {}
    latent = Latent(
        (i["width"] // 8) * 8,
        (i["height"] // 8) * 8,
        batch=i["batch_size"],
        frames=wan_frames(i["length"]),
        source=tuple(start[:1]),
        motion=data.get("pose", "Static"),
        motion_speed=data.get("speed", 1.0),
    )
    return positive, i["negative"], latent


def _camera(i: dict[str, Any]) -> tuple[Any, ...]:
    pose = {"pose": i["camera_pose"], "speed": i.get("speed", 1.0)}
    return Embeds("WAN_CAMERA_EMBEDDING", pose), i["width"], i["height"], i["length"]


_SIZE = {
    "width": INT(832, 16, 16384, 16),
    "height": INT(480, 16, 16384, 16),
    "length": INT(81, 1, 16384, 4),
}
_VIDEO_INPUTS = {
    "positive": _COND,
    "negative": _COND,
    "vae": LINK("VAE"),
    **_SIZE,
    "batch_size": INT(1, 1, 4096),
}

NODES = [
    loader(
        "CLIPVisionLoader",
        {"clip_name": COMBO(files_in("clip_vision"))},
        ("CLIP_VISION",),
        display_name="Load CLIP Vision",
    ),
    NodeDef(
        "CLIPVisionEncode",
        quick(0.1, lambda i: (Embeds("CLIP_VISION_OUTPUT", {"images": len(i["image"])}),)),
        {
            "clip_vision": LINK("CLIP_VISION"),
            "image": LINK("IMAGE"),
            "crop": COMBO(["center", "none"]),
        },
        outputs=("CLIP_VISION_OUTPUT",),
        category="conditioning",
        display_name="CLIP Vision Encode",
        simulated=True,
    ),
    NodeDef(
        "WanImageToVideo",
        quick(0.1, lambda i: _video_latent(i, None)),
        _VIDEO_INPUTS,
        optional={"clip_vision_output": LINK("CLIP_VISION_OUTPUT"), "start_image": LINK("IMAGE")},
        outputs=("CONDITIONING", "CONDITIONING", "LATENT"),
        output_names=("positive", "negative", "latent"),
        category="conditioning/video_models",
        python_module=_WAN,
        simulated=True,
    ),
    NodeDef(
        "WanCameraEmbedding",
        quick(0.0, _camera),
        {"camera_pose": COMBO(CAMERA_POSES), **_SIZE},
        optional={
            "speed": FLOAT(1.0, 0.0, 10.0, 0.1),
            "fx": FLOAT(0.5, 0.0, 1.0, 0.000000001),
            "fy": FLOAT(0.5, 0.0, 1.0, 0.000000001),
            "cx": FLOAT(0.5, 0.0, 1.0),
            "cy": FLOAT(0.5, 0.0, 1.0),
        },
        outputs=("WAN_CAMERA_EMBEDDING", "INT", "INT", "INT"),
        output_names=("camera_embedding", "width", "height", "length"),
        category="camera",
        python_module="comfy_extras.nodes_camera_trajectory",
    ),
    NodeDef(
        "WanCameraImageToVideo",
        quick(0.1, lambda i: _video_latent(i, i.get("camera_conditions"))),
        _VIDEO_INPUTS,
        optional={
            "clip_vision_output": LINK("CLIP_VISION_OUTPUT"),
            "start_image": LINK("IMAGE"),
            "camera_conditions": LINK("WAN_CAMERA_EMBEDDING"),
        },
        outputs=("CONDITIONING", "CONDITIONING", "LATENT"),
        output_names=("positive", "negative", "latent"),
        category="conditioning/video_models",
        python_module=_WAN,
        simulated=True,
    ),
]
