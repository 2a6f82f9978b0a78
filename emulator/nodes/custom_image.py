"""Simulated custom image nodes: IPAdapter (style transfer) and Florence-2 (captions)."""

from __future__ import annotations

from typing import Any

from PIL import Image, ImageStat

from comfygraph.emulator.catalog import files_in
from comfygraph.emulator.nodes.base import (
    BOOLEAN,
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
from comfygraph.emulator.nodes.simulate import loader, quick
from comfygraph.emulator.nodes.values import Images, Model

IPADAPTER_PRESETS = [
    "LIGHT - SD1.5 only (low strength)",
    "STANDARD (medium strength)",
    "VIT-G (medium strength)",
    "PLUS (high strength)",
    "PLUS FACE (portraits)",
    "FULL FACE - SD1.5 only (portraits stronger)",
]
WEIGHT_TYPES = [
    "linear", "ease in", "ease out", "ease in-out", "reverse in-out", "weak input",
    "weak output", "weak middle", "strong middle", "style transfer", "composition",
    "strong style transfer", "style and composition", "style transfer precise",
    "composition precise",
]  # fmt: skip
FLORENCE_TASKS = [
    "region_caption", "dense_region_caption", "region_proposal", "caption", "detailed_caption",
    "more_detailed_caption", "caption_to_phrase_grounding", "referring_expression_segmentation",
    "ocr", "ocr_with_region", "docvqa", "prompt_gen_tags", "prompt_gen_mixed_caption",
    "prompt_gen_analyze", "prompt_gen_mixed_caption_plus",
]  # fmt: skip
_COLOURS = {
    "red": (200, 40, 40), "orange": (230, 140, 30), "yellow": (220, 210, 60),
    "green": (50, 160, 70), "teal": (40, 150, 150), "blue": (40, 80, 200),
    "purple": (130, 60, 170), "pink": (230, 130, 170), "brown": (120, 80, 40),
    "black": (15, 15, 15), "grey": (128, 128, 128), "white": (240, 240, 240),
}  # fmt: skip


def colour_name(image: Image.Image) -> str:
    mean = ImageStat.Stat(image.convert("RGB").resize((32, 32))).mean
    return min(
        _COLOURS, key=lambda n: sum((a - b) ** 2 for a, b in zip(_COLOURS[n], mean, strict=True))
    )


def describe(image: Image.Image, task: str) -> str:
    """A deterministic caption that really depends on the picture's size and colours."""
    width, height = image.size
    shape = "portrait" if height > width else "landscape" if width > height else "square"
    short = f"a character in a {shape} picture with mostly {colour_name(image)} tones"
    if task in ("caption", "prompt_gen_tags"):
        return short.capitalize()
    corner = colour_name(image.crop((0, 0, max(1, width // 4), max(1, height // 4))))
    detail = (
        f"The image shows {short}. The character is centred in the frame and looks "
        f"towards the viewer, softly lit against a plain {corner} background."
    )
    if task == "detailed_caption":
        return detail
    return (
        f"{detail} The {width}x{height} picture is sharp, with even exposure "
        "and a shallow depth of field."
    )


async def florence_run(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    images: Images = i["image"]
    await ctx.work(0.8)
    captions = [describe(im, i["task"]) for im in images]
    masks = [Image.new("L", im.size, 0) for im in images]
    caption = captions[0] if len(captions) == 1 else "\n".join(captions)
    return done(images, masks, caption, {"captions": captions})


def _apply_style(i: dict[str, Any]) -> tuple[Any, ...]:
    model: Model = i["model"]
    return (Model(model.kind, model.name, tuple(i["image"][:1]), float(i["weight"])),)


_IPA = "custom_nodes.ComfyUI_IPAdapter_plus"
_FLORENCE = "custom_nodes.ComfyUI-Florence2"

NODES = [
    NodeDef(
        "IPAdapterUnifiedLoader",
        quick(0.5, lambda i: (i["model"], Model("IPADAPTER", i["preset"]))),
        {"model": LINK("MODEL"), "preset": COMBO(IPADAPTER_PRESETS)},
        optional={"ipadapter": LINK("IPADAPTER")},
        outputs=("MODEL", "IPADAPTER"),
        output_names=("model", "ipadapter"),
        category="ipadapter",
        python_module=_IPA,
        display_name="IPAdapter Unified Loader",
        simulated=True,
    ),
    NodeDef(
        "IPAdapterAdvanced",
        quick(0.3, _apply_style),
        {
            "model": LINK("MODEL"),
            "ipadapter": LINK("IPADAPTER"),
            "image": LINK("IMAGE"),
            "weight": FLOAT(1.0, -1.0, 5.0, 0.05),
            "weight_type": COMBO(WEIGHT_TYPES),
            "combine_embeds": COMBO(["concat", "add", "subtract", "average", "norm average"]),
            "start_at": FLOAT(0.0, 0.0, 1.0, 0.001),
            "end_at": FLOAT(1.0, 0.0, 1.0, 0.001),
            "embeds_scaling": COMBO(
                ["V only", "K+V", "K+V w/ C penalty", "K+mean(V) w/ C penalty"]
            ),
        },
        optional={
            "image_negative": LINK("IMAGE"),
            "attn_mask": LINK("MASK"),
            "clip_vision": LINK("CLIP_VISION"),
        },
        outputs=("MODEL",),
        category="ipadapter",
        python_module=_IPA,
        display_name="IPAdapter Advanced",
        simulated=True,
    ),
    loader(
        "DownloadAndLoadFlorence2Model",
        {
            "model": COMBO(files_in("LLM")),
            "precision": COMBO(["fp16", "bf16", "fp32"]),
            "attention": COMBO(["flash_attention_2", "sdpa", "eager"]),
        },
        ("FL2MODEL",),
        optional={"lora": LINK("PEFTLORA")},
        output_names=("florence2_model",),
        category="Florence2",
        module=_FLORENCE,
        display_name="DownloadAndLoadFlorence2Model",
    ),
    NodeDef(
        "Florence2Run",
        florence_run,
        {
            "image": LINK("IMAGE"),
            "florence2_model": LINK("FL2MODEL"),
            "text_input": STRING(multiline=True),
            "task": COMBO(FLORENCE_TASKS),
            "fill_mask": BOOLEAN(True),
        },
        optional={
            "keep_model_loaded": BOOLEAN(False),
            "max_new_tokens": INT(1024, 1, 4096),
            "num_beams": INT(3, 1, 64),
            "do_sample": BOOLEAN(True),
            "output_mask_select": STRING(""),
            "seed": INT(1, 1, 0xFFFFFFFFFFFFFFFF),
        },
        outputs=("IMAGE", "MASK", "STRING", "JSON"),
        output_names=("image", "mask", "caption", "data"),
        category="Florence2",
        python_module=_FLORENCE,
        display_name="Florence2Run",
        simulated=True,
    ),
]
