"""Shared behaviour of simulated model nodes: timed steps, previews, decoding latents.

A simulated node spends `seconds / speed` of wall time, ticks ComfyUI's ProgressBar
(progress + progress_state + a preview frame) and produces real pixels that depend on
its inputs (seed, prompt, source image), so outputs are deterministic and distinct.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from PIL import Image

from comfygraph.emulator import media
from comfygraph.emulator.nodes.base import InputSpec, NodeContext, NodeDef, NodeResult, done
from comfygraph.emulator.nodes.values import Images, Latent, Model


async def sample(ctx: NodeContext, latent: Latent, steps: int, seconds_per_step: float) -> None:
    """A sampler loop: one progress tick (with a latent preview) per step."""
    small = render(latent, scale=8, frames=1)[0]
    noise = Image.effect_noise(small.size, 64).convert("RGB")
    for step in range(1, steps + 1):
        await ctx.work(seconds_per_step)
        await ctx.progress(step, steps, Image.blend(noise, small, step / steps))


def step_seconds(latent: Latent, base: float = 0.1) -> float:
    """Bigger and longer latents take longer per step, as on a GPU."""
    megapixels = latent.width * latent.height / 1_000_000
    return base * max(0.25, megapixels) * max(1.0, latent.frames / 16)


def render(latent: Latent, *, scale: int = 1, frames: int | None = None) -> Images:
    """Decode a latent into pictures: the source (if any) blended with a seed pattern."""
    width, height = max(8, latent.width // scale), max(8, latent.height // scale)
    images = []
    for index in range(latent.batch):
        picture = media.synth_image(width, height, latent.seed + index, latent.text)
        if latent.source:
            source = media.fit(latent.source[min(index, len(latent.source) - 1)], width, height)
            picture = Image.blend(source, picture, min(0.6, 0.5 * latent.denoise))
        if latent.style:
            style = media.fit(latent.style[0], width, height)
            picture = Image.blend(picture, style, min(0.5, 0.35 * abs(latent.style_weight)))
        images.append(picture)
    count = latent.frames if frames is None else frames
    if count <= 1:
        return images
    moving = [move(images[0], f, count, latent.motion, latent.motion_speed) for f in range(count)]
    return media.timecoded(moving)


def move(image: Image.Image, frame: int, total: int, pose: str, speed: float) -> Image.Image:
    """One frame of camera motion named like WanCameraEmbedding's poses."""
    step = max(1, round(speed * max(1, image.width // 64)))
    if pose == "Pan Left":
        return media.shifted(image, -step * frame, 0)
    if pose == "Pan Up":
        return media.shifted(image, 0, -step * frame)
    if pose == "Pan Down":
        return media.shifted(image, 0, step * frame)
    if pose in ("Zoom In", "Zoom Out"):
        progress = frame if pose == "Zoom In" else total - 1 - frame
        return media.zoomed(image, 1.0 + 0.5 * speed * progress / max(1, total))
    if pose in ("Anti Clockwise (ACW)", "ClockWise (CW)"):
        sign = 1 if pose.startswith("Anti") else -1
        return image.rotate(sign * speed * 30 * frame / max(1, total))
    # "Static" and talking heads still move a little, so frames are distinct.
    return media.shifted(image, step * frame if pose == "Pan Right" else frame % 2, 0)


def loader(
    class_type: str,
    inputs: Mapping[str, InputSpec],
    outputs: tuple[str, ...],
    *,
    optional: Mapping[str, InputSpec] | None = None,
    output_names: tuple[str, ...] = (),
    category: str = "loaders",
    module: str = "nodes",
    display_name: str = "",
    seconds: float = 0.5,
) -> NodeDef:
    """A model loader: takes a moment, returns named handles (no weights anywhere)."""
    first = next(iter(inputs))

    async def run(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
        await ctx.load_model(class_type, str(i[first]))
        await ctx.work(seconds)
        return done(*(Model(kind, str(i[first])) for kind in outputs))

    return NodeDef(
        class_type,
        run,
        dict(inputs),
        optional=dict(optional or {}),
        outputs=outputs,
        output_names=output_names,
        category=category,
        python_module=module,
        display_name=display_name,
        simulated=True,
    )


def quick(
    seconds: float, compute: Callable[[dict[str, Any]], tuple[Any, ...]]
) -> Callable[[NodeContext, dict[str, Any]], Any]:
    """A simulated node with no progress bar: wait, then compute its outputs."""

    async def run(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
        await ctx.work(seconds)
        return done(*compute(i))

    return run
