"""Simulated lipsync nodes from ComfyUI-WanVideoWrapper (MultiTalk / InfiniteTalk).

Class and input names follow Kijai's wrapper. One input is comfygraph's own:
`MultiTalkWav2VecEmbeds.trim_to_audio` makes the clip exactly as long as the audio
(num_frames = audio seconds x fps) instead of `num_frames`, which the old studio's
"trim to audio" switch did outside ComfyUI.
"""

from __future__ import annotations

from typing import Any

from comfygraph.emulator.catalog import WANVIDEO_T5, WANVIDEO_VAE, WAV2VEC, files_in
from comfygraph.emulator.media import Audio
from comfygraph.emulator.nodes.base import (
    BOOLEAN,
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
from comfygraph.emulator.nodes.values import Embeds, Latent

_MODULE = "custom_nodes.ComfyUI-WanVideoWrapper"
_CATEGORY = "WanVideoWrapper"
_DEVICES = COMBO(["main_device", "offload_device"])
_WAN_MODELS = [n for n in files_in("diffusion_models") if n.startswith("WanVideo/")]


def mix(tracks: list[Audio], mode: str) -> Audio:
    """Several speakers: "para" talk at once (longest wins), "add" one after another."""
    first = tracks[0]
    if mode == "add":
        return Audio(first.sample_rate, first.channels, b"".join(t.pcm for t in tracks))
    return max(tracks, key=lambda t: t.seconds)


async def wav2vec_embeds(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    tracks = [i[k] for k in ("audio_1", "audio_2", "audio_3", "audio_4") if k in i]
    audio = mix(tracks, i["multi_audio_type"])
    fps = i["fps"]
    frames = max(1, round(audio.seconds * fps)) if i.get("trim_to_audio") else i["num_frames"]
    await ctx.work(0.2 + 0.02 * audio.seconds)
    embeds = Embeds("MULTITALK_EMBEDS", {"frames": frames, "fps": fps, "speakers": len(tracks)})
    return done(embeds, audio.trimmed(frames / fps), frames)


def _image_embeds(i: dict[str, Any]) -> tuple[Any, ...]:
    start = i.get("start_image") or []
    frames = i.get("num_frames", i["frame_window_size"])
    data = {
        "width": i["width"],
        "height": i["height"],
        "frames": frames,
        "source": tuple(start[:1]),
    }
    return (Embeds("WANVIDIMAGE_EMBEDS", data),)


async def wan_sampler(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    data = i["image_embeds"].data
    text = i["text_embeds"].data.get("positive", "") if "text_embeds" in i else ""
    latent = Latent(
        data["width"],
        data["height"],
        frames=data["frames"],
        seed=i["seed"],
        text=text,
        source=data["source"],
    )
    await sample(ctx, latent, i["steps"], step_seconds(latent, base=0.2))
    return done(latent)


async def wan_decode(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    latent: Latent = i["samples"]
    await ctx.work(0.05 * max(1.0, latent.frames / 16))
    return done(await ctx.offload(render, latent))


def _text_embeds(i: dict[str, Any]) -> tuple[Any, ...]:
    data = {"positive": i["positive_prompt"], "negative": i["negative_prompt"]}
    return (Embeds("WANVIDEOTEXTEMBEDS", data),)


_AUDIO = LINK("AUDIO")

NODES = [
    loader(
        "WanVideoModelLoader",
        {
            "model": COMBO(_WAN_MODELS),
            "base_precision": COMBO(["fp32", "bf16", "fp16", "fp16_fast"]),
            "quantization": COMBO(["disabled", "fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2"]),
            "load_device": _DEVICES,
        },
        ("WANVIDEOMODEL",),
        optional={
            "attention_mode": COMBO(["sdpa", "flash_attn_2", "flash_attn_3", "sageattn"]),
            "multitalk_model": LINK("MULTITALKMODEL"),
        },
        output_names=("model",),
        category=_CATEGORY,
        module=_MODULE,
        display_name="WanVideo Model Loader",
        seconds=1.0,
    ),
    loader(
        "MultiTalkModelLoader",
        {"model": COMBO(_WAN_MODELS)},
        ("MULTITALKMODEL",),
        optional={"base_precision": COMBO(["fp32", "bf16", "fp16"])},
        output_names=("model",),
        category=_CATEGORY,
        module=_MODULE,
        display_name="MultiTalk Model Loader",
    ),
    loader(
        "WanVideoVAELoader",
        {"model_name": COMBO(WANVIDEO_VAE)},
        ("WANVAE",),
        optional={"precision": COMBO(["bf16", "fp16", "fp32"])},
        output_names=("vae",),
        category=_CATEGORY,
        module=_MODULE,
        display_name="WanVideo VAE Loader",
    ),
    loader(
        "LoadWanVideoT5TextEncoder",
        {"model_name": COMBO(WANVIDEO_T5), "precision": COMBO(["fp32", "bf16"])},
        ("WANTEXTENCODER",),
        optional={"load_device": _DEVICES, "quantization": COMBO(["disabled", "fp8_e4m3fn"])},
        output_names=("wan_t5_model",),
        category=_CATEGORY,
        module=_MODULE,
        display_name="WanVideo T5 Text Encoder Loader",
    ),
    loader(
        "DownloadAndLoadWav2VecModel",
        {
            "model": COMBO(WAV2VEC),
            "base_precision": COMBO(["fp32", "bf16", "fp16"]),
            "load_device": _DEVICES,
        },
        ("WAV2VECMODEL",),
        output_names=("wav2vec_model",),
        category=_CATEGORY,
        module=_MODULE,
        display_name="(Down)load Wav2Vec Model",
    ),
    NodeDef(
        "WanVideoTextEncode",
        quick(0.1, _text_embeds),
        {"positive_prompt": STRING(multiline=True), "negative_prompt": STRING(multiline=True)},
        optional={"t5": LINK("WANTEXTENCODER"), "force_offload": BOOLEAN(True)},
        outputs=("WANVIDEOTEXTEMBEDS",),
        output_names=("text_embeds",),
        category=_CATEGORY,
        python_module=_MODULE,
        display_name="WanVideo TextEncode",
        simulated=True,
    ),
    NodeDef(
        "MultiTalkWav2VecEmbeds",
        wav2vec_embeds,
        {
            "wav2vec_model": LINK("WAV2VECMODEL"),
            "audio_1": _AUDIO,
            "normalize_loudness": BOOLEAN(True),
            "num_frames": INT(81, 1, 10000),
            "fps": FLOAT(25.0, 1.0, 60.0, 0.1),
            "audio_scale": FLOAT(1.0, 0.0, 100.0),
            "audio_cfg_scale": FLOAT(1.0, 0.0, 100.0),
            "multi_audio_type": COMBO(["para", "add"]),
        },
        optional={
            "audio_2": _AUDIO,
            "audio_3": _AUDIO,
            "audio_4": _AUDIO,
            "trim_to_audio": BOOLEAN(False),
        },
        outputs=("MULTITALK_EMBEDS", "AUDIO", "INT"),
        output_names=("multitalk_embeds", "audio", "num_frames"),
        category=_CATEGORY,
        python_module=_MODULE,
        display_name="MultiTalk Wav2Vec Embeds",
        simulated=True,
    ),
    NodeDef(
        "WanVideoImageToVideoMultiTalk",
        quick(0.1, _image_embeds),
        {
            "vae": LINK("WANVAE"),
            "width": INT(832, 64, 8096, 8),
            "height": INT(480, 64, 8096, 8),
            "frame_window_size": INT(81, 1, 1000),
            "motion_frame": INT(25, 1, 1000),
            "force_offload": BOOLEAN(False),
            "colormatch": COMBO(
                ["disabled", "mkl", "hm", "reinhard", "mvgd", "hm-mvgd-hm", "hm-mkl-hm"]
            ),
        },
        optional={
            "start_image": LINK("IMAGE"),
            "clip_embeds": LINK("WANVIDIMAGE_CLIPEMBEDS"),
            "num_frames": INT(81, 1, 10000),
        },
        outputs=("WANVIDIMAGE_EMBEDS",),
        output_names=("image_embeds",),
        category=_CATEGORY,
        python_module=_MODULE,
        display_name="WanVideo Image To Video MultiTalk",
        simulated=True,
    ),
    NodeDef(
        "WanVideoSampler",
        wan_sampler,
        {
            "model": LINK("WANVIDEOMODEL"),
            "image_embeds": LINK("WANVIDIMAGE_EMBEDS"),
            "steps": INT(30, 1, 1000),
            "cfg": FLOAT(6.0, 0.0, 30.0),
            "shift": FLOAT(5.0, 0.0, 1000.0),
            "seed": SEED,
            "force_offload": BOOLEAN(True),
            "scheduler": COMBO(
                [
                    "unipc",
                    "unipc/beta",
                    "dpm++",
                    "dpm++/beta",
                    "dpm++_sde",
                    "euler",
                    "euler/beta",
                    "lcm",
                ]
            ),
            "riflex_freq_index": INT(0, 0, 1000),
        },
        optional={
            "text_embeds": LINK("WANVIDEOTEXTEMBEDS"),
            "multitalk_embeds": LINK("MULTITALK_EMBEDS"),
        },
        outputs=("LATENT",),
        output_names=("samples",),
        category=_CATEGORY,
        python_module=_MODULE,
        display_name="WanVideo Sampler",
        simulated=True,
    ),
    NodeDef(
        "WanVideoDecode",
        wan_decode,
        {
            "vae": LINK("WANVAE"),
            "samples": LINK("LATENT"),
            "enable_vae_tiling": BOOLEAN(False),
            "tile_x": INT(272, 40, 2048, 8),
            "tile_y": INT(272, 40, 2048, 8),
            "tile_stride_x": INT(144, 32, 2040, 8),
            "tile_stride_y": INT(128, 32, 2040, 8),
        },
        outputs=("IMAGE",),
        output_names=("images",),
        category=_CATEGORY,
        python_module=_MODULE,
        display_name="WanVideo Decode",
        simulated=True,
    ),
]
