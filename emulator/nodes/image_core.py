"""ComfyUI core image nodes that need no model, really executed with Pillow."""

from __future__ import annotations

from typing import Any

from PIL import Image, ImageFilter, ImageOps

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

UPSCALE_METHODS = ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]
_RESAMPLE = {
    "nearest-exact": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "area": Image.Resampling.BOX,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


class KorniaError(Exception):
    """Raised where ComfyUI's Canny (kornia) raises, so exception_type reads the same."""


KorniaError.__module__ = "kornia.core.exceptions"
KorniaError.__qualname__ = KorniaError.__name__ = "BaseError"


def _rgb(color: int) -> tuple[int, int, int]:
    return (color >> 16) & 0xFF, (color >> 8) & 0xFF, color & 0xFF


async def empty_image(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    image = Image.new("RGB", (i["width"], i["height"]), _rgb(i["color"]))
    return done([image.copy() for _ in range(i["batch_size"])])


async def invert(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    images: Images = i["image"]
    return done(await ctx.offload(lambda: [ImageOps.invert(im.convert("RGB")) for im in images]))


def resize(images: Images, width: int, height: int, method: str, crop: str) -> Images:
    out = []
    for im in images:
        w = width or max(1, round(im.width * height / im.height))
        h = height or max(1, round(im.height * width / im.width))
        if crop == "center":
            out.append(ImageOps.fit(im, (w, h), _RESAMPLE[method]))
        else:
            out.append(im.resize((w, h), _RESAMPLE[method]))
    return out


async def scale(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    args = (i["image"], i["width"], i["height"], i["upscale_method"], i["crop"])
    return done(await ctx.offload(resize, *args))


async def scale_by(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    first = i["image"][0]
    w, h = round(first.width * i["scale_by"]), round(first.height * i["scale_by"])
    return done(await ctx.offload(resize, i["image"], w, h, i["upscale_method"], "disabled"))


async def blur(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    kernel = ImageFilter.GaussianBlur(i["sigma"])
    return done(await ctx.offload(lambda: [im.filter(kernel) for im in i["image"]]))


async def batch(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    first: Images = i["image1"]
    size = first[0].size
    second = [im if im.size == size else im.resize(size) for im in i["image2"]]
    return done([*first, *second])


async def image_size(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    images: Images = i["image"]
    width, height = images[0].size
    ctx.send_text(f"width: {width}, height: {height}\n batch size: {len(images)}")
    return done(width, height, len(images))


async def canny(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    low, high = i["low_threshold"], i["high_threshold"]
    if low > high:
        raise KorniaError(
            "Invalid input thresholds. low_threshold should be smaller than or equal to "
            f"the high_threshold. Got: {low}>{high}"
        )

    def edges(im: Image.Image) -> Image.Image:
        found = im.convert("L").filter(ImageFilter.FIND_EDGES)
        return found.point(lambda v: 255 if v >= low * 255 else 0).convert("RGB")

    return done(await ctx.offload(lambda: [edges(im) for im in i["image"]]))


IMAGE = LINK("IMAGE")

NODES = [
    NodeDef(
        "EmptyImage",
        empty_image,
        {
            "width": INT(512, 1, 16384),
            "height": INT(512, 1, 16384),
            "batch_size": ["INT", {"default": 1, "min": 1, "max": 4096}],
            "color": INT(0, 0, 0xFFFFFF, display="color"),
        },
        outputs=("IMAGE",),
        category="image",
    ),
    NodeDef("ImageInvert", invert, {"image": IMAGE}, outputs=("IMAGE",), category="image"),
    NodeDef(
        "ImageScale",
        scale,
        {
            "image": IMAGE,
            "upscale_method": COMBO(UPSCALE_METHODS),
            "width": INT(512, 0, 16384),
            "height": INT(512, 0, 16384),
            "crop": COMBO(["disabled", "center"]),
        },
        outputs=("IMAGE",),
        category="image/upscaling",
        display_name="Upscale Image",
    ),
    NodeDef(
        "ImageScaleBy",
        scale_by,
        {
            "image": IMAGE,
            "upscale_method": COMBO(UPSCALE_METHODS),
            "scale_by": FLOAT(1.0, 0.01, 8.0),
        },
        outputs=("IMAGE",),
        category="image/upscaling",
        display_name="Upscale Image By",
    ),
    NodeDef(
        "ImageBlur",
        blur,
        {"image": IMAGE, "blur_radius": INT(1, 1, 31), "sigma": FLOAT(1.0, 0.1, 10.0, 0.1)},
        outputs=("IMAGE",),
        category="image/postprocessing",
        python_module="comfy_extras.nodes_post_processing",
        display_name="Image Blur",
    ),
    NodeDef(
        "ImageBatch",
        batch,
        {"image1": IMAGE, "image2": IMAGE},
        outputs=("IMAGE",),
        category="image",
        display_name="Batch Images",
    ),
    NodeDef(
        "GetImageSize",
        image_size,
        {"image": IMAGE},
        outputs=("INT", "INT", "INT"),
        output_names=("width", "height", "batch_size"),
        category="image",
        python_module="comfy_extras.nodes_images",
        display_name="Get Image Size",
    ),
    NodeDef(
        "Canny",
        canny,
        {
            "image": IMAGE,
            "low_threshold": FLOAT(0.4, 0.01, 0.99),
            "high_threshold": FLOAT(0.8, 0.01, 0.99),
        },
        outputs=("IMAGE",),
        category="image/preprocessors",
        python_module="comfy_extras.nodes_canny",
    ),
]
