"""The model files the emulator pretends to have installed, per ComfyUI model folder.

Loader nodes offer these names as their combo options (so a wrong name fails validation
with value_not_in_list, as on a real worker) and GET /models/{folder} lists them.
Nothing is loaded: the names only make graphs realistic.
"""

from __future__ import annotations

MODEL_FILES: dict[str, list[str]] = {
    "checkpoints": [
        "dreamshaper_8.safetensors",
        "juggernautXL_v9Rdphoto2Lightning.safetensors",
        "sd_xl_base_1.0.safetensors",
    ],
    "configs": [],
    "loras": [],
    "vae": ["ae.safetensors", "sdxl_vae.safetensors", "wan_2.1_vae.safetensors"],
    "text_encoders": [
        "clip_l.safetensors",
        "t5xxl_fp8_e4m3fn_scaled.safetensors",
        "umt5_xxl_fp8_e4m3fn_scaled.safetensors",
    ],
    "diffusion_models": [
        "flux1-kontext-dev.safetensors",
        "wan2.1_fun_camera_v1.1_1.3B_bf16.safetensors",
        "wan2.1_i2v_480p_14B_fp8_scaled.safetensors",
        "WanVideo/Wan2_1-I2V-14B-480P_fp8_e4m3fn.safetensors",
        "WanVideo/WanVideo_2_1_Multitalk_14B_fp8_e4m3fn.safetensors",
    ],
    "clip_vision": ["clip_vision_h.safetensors"],
    "style_models": [],
    "embeddings": [],
    "diffusers": [],
    "vae_approx": [],
    "controlnet": [],
    "gligen": [],
    "upscale_models": ["4x-UltraSharp.pth", "RealESRGAN_x2.pth"],
    "latent_upscale_models": [],
    "custom_nodes": [],
    "hypernetworks": [],
    "photomaker": [],
    "classifiers": [],
    "model_patches": [],
    "audio_encoders": [],
    "ipadapter": ["ip-adapter-plus_sdxl_vit-h.safetensors"],
    "LLM": [
        "microsoft/Florence-2-base",
        "microsoft/Florence-2-large",
        "MiaoshouAI/Florence-2-large-PromptGen-v2.0",
    ],
}

WANVIDEO_VAE = ["Wan2_1_VAE_bf16.safetensors"]
WANVIDEO_T5 = ["umt5-xxl-enc-bf16.safetensors"]
WAV2VEC = ["TencentGameMate/chinese-wav2vec2-base", "facebook/wav2vec2-base-960h"]


def files_in(folder: str) -> list[str]:
    return list(MODEL_FILES.get(folder, []))
