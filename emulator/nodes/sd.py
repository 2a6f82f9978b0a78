"""Simulated Stable Diffusion / Flux core nodes: loaders, text encoding, sampling, VAE."""

from __future__ import annotations

import math
from typing import Any

from PIL import Image

from comfygraph.emulator import media
from comfygraph.emulator.catalog import files_in
from comfygraph.emulator.nodes.base import (
    COMBO,
    FLOAT,
    INT,
    LINK,
    SEED,
    STRING,
    NodeContext,
    NodeDef,
    NodeResult,
    done,
)
from comfygraph.emulator.nodes.simulate import loader, quick, render, sample, step_seconds
from comfygraph.emulator.nodes.values import Conditioning, Images, Latent, Model

SAMPLERS = [
    "euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "heun", "heunpp2",
    "dpm_2", "dpm_2_ancestral", "lms", "dpm_fast", "dpm_adaptive", "dpmpp_2s_ancestral",
    "dpmpp_2s_ancestral_cfg_pp", "dpmpp_sde", "dpmpp_sde_gpu", "dpmpp_2m", "dpmpp_2m_cfg_pp",
    "dpmpp_2m_sde", "dpmpp_2m_sde_gpu", "dpmpp_3m_sde", "dpmpp_3m_sde_gpu", "ddpm", "lcm",
    "ipndm", "ipndm_v", "deis", "res_multistep", "res_multistep_cfg_pp", "res_multistep_ancestral",
    "res_multistep_ancestral_cfg_pp", "gradient_estimation", "er_sde", "seeds_2", "seeds_3",
    "sa_solver", "sa_solver_pece", "ddim", "uni_pc", "uni_pc_bh2",
]  # fmt: skip
SCHEDULERS = [
    "simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta", "normal",
    "linear_quadratic", "kl_optimal",
]  # fmt: skip
CLIP_TYPES = [
    "stable_diffusion", "stable_cascade", "sd3", "stable_audio", "mochi", "ltxv", "pixart",
    "cosmos", "lumina2", "wan", "hidream", "chroma", "ace", "omnigen2", "qwen_image",
    "hunyuan_image",
]  # fmt: skip
WEIGHT_DTYPES = ["default", "fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2"]
# Flux Kontext's preferred resolutions (comfy_extras/nodes_flux.py PREFERED_KONTEXT_RESOLUTIONS).
KONTEXT_RESOLUTIONS = [
    (672, 1568), (688, 1504), (720, 1456), (752, 1392), (800, 1328), (832, 1248), (880, 1184),
    (944, 1104), (1024, 1024), (1104, 944), (1184, 880), (1248, 832), (1328, 800), (1392, 752),
    (1456, 720), (1504, 688), (1568, 672),
]  # fmt: skip


async def ksampler(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    model: Model = i["model"]
    positive: Conditioning = i["positive"]
    base: Latent = i["latent_image"]
    latent = base.with_(
        seed=i["seed"],
        denoise=i["denoise"],
        text=positive.text,
        source=base.source or positive.reference,
        style=model.style,
        style_weight=model.style_weight,
    )
    await sample(ctx, latent, i["steps"], step_seconds(latent))
    return done(latent)


async def vae_decode(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    latent: Latent = i["samples"]
    await ctx.work(0.1 * max(1.0, latent.frames / 16))
    return done(await ctx.offload(render, latent))


async def vae_encode(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    pixels: Images = i["pixels"]
    await ctx.work(0.1)
    # The VAE works in 8-pixel cells: ComfyUI crops the picture to a multiple of 8.
    width, height = (pixels[0].width // 8) * 8, (pixels[0].height // 8) * 8
    source = tuple(im.crop((0, 0, width, height)) for im in pixels)
    return done(Latent(width, height, batch=len(pixels), source=source))


def _empty_latent(i: dict[str, Any]) -> tuple[Any, ...]:
    return (Latent((i["width"] // 8) * 8, (i["height"] // 8) * 8, batch=i["batch_size"]),)


def _encode_text(i: dict[str, Any]) -> tuple[Any, ...]:
    return (Conditioning(str(i["text"])),)


def _kontext_scale(images: Images) -> Images:
    width, height = images[0].size
    aspect = width / height
    _, w, h = min((abs(aspect - w / h), w, h) for w, h in KONTEXT_RESOLUTIONS)
    return [im.resize((w, h), Image.Resampling.LANCZOS) for im in images]


async def kontext_scale(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    return done(await ctx.offload(_kontext_scale, i["image"]))


async def upscale_with_model(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    model: Model = i["upscale_model"]
    images: Images = i["image"]
    factor = 4 if "4x" in model.name.lower() or "x4" in model.name.lower() else 2
    width, height = images[0].size
    # comfy.utils.get_tiled_scale_steps with ImageUpscaleWithModel's 512 tiles, 32 overlap.
    tiles = math.ceil(height / (512 - 32)) * math.ceil(width / (512 - 32)) * len(images)
    for tile in range(1, tiles + 1):
        await ctx.work(0.02)
        await ctx.progress(tile, tiles)
    size = (width * factor, height * factor)
    return done(
        await ctx.offload(lambda: [im.resize(size, Image.Resampling.LANCZOS) for im in images])
    )


async def decode_audio(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    latent: Latent = i["samples"]
    await ctx.work(0.2)
    seconds = latent.audio_seconds if latent.audio_seconds is not None else 1.0
    hz = 110.0 + latent.seed % 330
    return done(await ctx.offload(media.tone, seconds, 44100, 2, hz))


_COND = LINK("CONDITIONING")

NODES = [
    loader(
        "CheckpointLoaderSimple",
        {"ckpt_name": COMBO(files_in("checkpoints"))},
        ("MODEL", "CLIP", "VAE"),
        display_name="Load Checkpoint",
    ),
    loader(
        "UNETLoader",
        {"unet_name": COMBO(files_in("diffusion_models")), "weight_dtype": COMBO(WEIGHT_DTYPES)},
        ("MODEL",),
        category="advanced/loaders",
        display_name="Load Diffusion Model",
    ),
    loader(
        "CLIPLoader",
        {"clip_name": COMBO(files_in("text_encoders")), "type": COMBO(CLIP_TYPES)},
        ("CLIP",),
        optional={"device": COMBO(["default", "cpu"])},
        category="advanced/loaders",
        display_name="Load CLIP",
    ),
    loader(
        "DualCLIPLoader",
        {
            "clip_name1": COMBO(files_in("text_encoders")),
            "clip_name2": COMBO(files_in("text_encoders")),
            "type": COMBO(["sdxl", "sd3", "flux", "hunyuan_video", "hidream", "hunyuan_image"]),
        },
        ("CLIP",),
        optional={"device": COMBO(["default", "cpu"])},
        category="advanced/loaders",
        display_name="DualCLIPLoader",
    ),
    loader("VAELoader", {"vae_name": COMBO(files_in("vae"))}, ("VAE",), display_name="Load VAE"),
    loader(
        "UpscaleModelLoader",
        {"model_name": ["COMBO", {"options": files_in("upscale_models"), "multiselect": False}]},
        ("UPSCALE_MODEL",),
        category="loaders",
        module="comfy_extras.nodes_upscale_model",
        display_name="Load Upscale Model",
        seconds=0.1,
    ),
    NodeDef(
        "CLIPTextEncode",
        quick(0.05, _encode_text),
        {"text": STRING(multiline=True, dynamicPrompts=True), "clip": LINK("CLIP")},
        outputs=("CONDITIONING",),
        category="conditioning",
        display_name="CLIP Text Encode (Prompt)",
        simulated=True,
    ),
    NodeDef(
        "ConditioningZeroOut",
        quick(0.0, lambda i: (i["conditioning"].with_(text=""),)),
        {"conditioning": _COND},
        outputs=("CONDITIONING",),
        category="advanced/conditioning",
    ),
    NodeDef(
        "FluxGuidance",
        quick(0.0, lambda i: (i["conditioning"].with_(guidance=i["guidance"]),)),
        {"conditioning": _COND, "guidance": FLOAT(3.5, 0.0, 100.0, 0.1)},
        outputs=("CONDITIONING",),
        category="advanced/conditioning/flux",
        python_module="comfy_extras.nodes_flux",
    ),
    NodeDef(
        "ReferenceLatent",
        quick(
            0.0,
            lambda i: (
                i["conditioning"].with_(reference=i["latent"].source if "latent" in i else ()),
            ),
        ),
        {"conditioning": _COND},
        optional={"latent": LINK("LATENT")},
        outputs=("CONDITIONING",),
        category="advanced/conditioning/edit_models",
        python_module="comfy_extras.nodes_edit_model",
    ),
    NodeDef(
        "FluxKontextImageScale",
        kontext_scale,
        {"image": LINK("IMAGE")},
        outputs=("IMAGE",),
        category="advanced/conditioning/flux",
        python_module="comfy_extras.nodes_flux",
    ),
    NodeDef(
        "ModelSamplingSD3",
        quick(0.0, lambda i: (i["model"],)),
        {"model": LINK("MODEL"), "shift": FLOAT(3.0, 0.0, 100.0)},
        outputs=("MODEL",),
        category="advanced/model",
        python_module="comfy_extras.nodes_model_advanced",
    ),
    NodeDef(
        "EmptyLatentImage",
        quick(0.0, _empty_latent),
        {
            "width": INT(512, 16, 16384, 8),
            "height": INT(512, 16, 16384, 8),
            "batch_size": INT(1, 1, 4096),
        },
        outputs=("LATENT",),
        category="latent",
        display_name="Empty Latent Image",
    ),
    NodeDef(
        "VAEEncode",
        vae_encode,
        {"pixels": LINK("IMAGE"), "vae": LINK("VAE")},
        outputs=("LATENT",),
        category="latent",
        display_name="VAE Encode",
        simulated=True,
    ),
    NodeDef(
        "KSampler",
        ksampler,
        {
            "model": LINK("MODEL"),
            "seed": SEED,
            "steps": INT(20, 1, 10000),
            "cfg": FLOAT(8.0, 0.0, 100.0, 0.1, round=0.01),
            "sampler_name": COMBO(SAMPLERS),
            "scheduler": COMBO(SCHEDULERS),
            "positive": _COND,
            "negative": _COND,
            "latent_image": LINK("LATENT"),
            "denoise": FLOAT(1.0, 0.0, 1.0),
        },
        outputs=("LATENT",),
        category="sampling",
        simulated=True,
    ),
    NodeDef(
        "VAEDecode",
        vae_decode,
        {"samples": LINK("LATENT"), "vae": LINK("VAE")},
        outputs=("IMAGE",),
        category="latent",
        display_name="VAE Decode",
        simulated=True,
    ),
    NodeDef(
        "EmptyLatentAudio",
        quick(0.0, lambda i: (Latent(64, 64, batch=i["batch_size"], audio_seconds=i["seconds"]),)),
        {"seconds": FLOAT(47.6, 1.0, 1000.0, 0.1), "batch_size": INT(1, 1, 4096)},
        outputs=("LATENT",),
        category="latent/audio",
        python_module="comfy_extras.nodes_audio",
    ),
    NodeDef(
        "VAEDecodeAudio",
        decode_audio,
        {"samples": LINK("LATENT"), "vae": LINK("VAE")},
        outputs=("AUDIO",),
        category="latent/audio",
        python_module="comfy_extras.nodes_audio",
        simulated=True,
    ),
    NodeDef(
        "ImageUpscaleWithModel",
        upscale_with_model,
        {"upscale_model": LINK("UPSCALE_MODEL"), "image": LINK("IMAGE")},
        outputs=("IMAGE",),
        category="image/upscaling",
        python_module="comfy_extras.nodes_upscale_model",
        display_name="Upscale Image (using Model)",
        simulated=True,
    ),
]
