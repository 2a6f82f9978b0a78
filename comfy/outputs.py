"""A finished prompt's outputs turned into the job row's columns (studio/outputs.py
streams them from the worker into storage). Every file a node reports is kept, whatever
its kind (PITFALLS: wrappers that assume images drop video, audio and text)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Collected:
    outputs: list[dict[str, Any]]  # JobOutput-shaped dicts, in node order
    texts: list[str]


def _first(outputs: Sequence[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    return next((o for o in outputs if o["kind"] == kind and not o["temporary"]), None)


def _urls(outputs: Sequence[dict[str, Any]], kind: str) -> list[str]:
    return [o["url"] for o in outputs if o["kind"] == kind and not o["temporary"]]


def job_columns(output_type: str, collected: Collected) -> dict[str, Any]:
    """The type-specific columns of the job row, from what the prompt produced."""
    outs = collected.outputs
    columns: dict[str, Any] = {"outputs": outs}
    if output_type == "video":
        main = _first(outs, "VIDEO")
        columns["output_video_urls"] = _urls(outs, "VIDEO")
        if main:
            columns.update(
                width=main["width"],
                height=main["height"],
                fps=main["fps"],
                duration_seconds=main["durationSeconds"],
            )
    elif output_type == "image":
        main = _first(outs, "IMAGE")
        columns["output_image_urls"] = _urls(outs, "IMAGE")
        if main:
            columns.update(width=main["width"], height=main["height"])
    elif output_type == "text":
        columns["output_text"] = "\n".join(collected.texts) or None
        columns["output_urls"] = [o["url"] for o in outs if not o["temporary"]]
    elif output_type == "audio":
        main = _first(outs, "AUDIO")
        columns["output_audio_urls"] = _urls(outs, "AUDIO")
        if main:
            columns.update(duration_seconds=main["durationSeconds"], sample_rate=main["sampleRate"])
    return {k: v for k, v in columns.items() if v is not None or k == "output_text"}
