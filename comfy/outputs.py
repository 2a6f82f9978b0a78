"""A finished prompt's outputs: downloaded from the worker into storage, described,
and turned into the job row's columns. Every file a node reports is kept, whatever
its kind (PITFALLS: wrappers that assume images drop video, audio and text)."""

from __future__ import annotations

from collections.abc import AsyncIterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from comfygraph.comfy.client import ComfyClient, PromptResult
from comfygraph.comfy.media import inspect


class StoredFileLike(Protocol):
    @property
    def key(self) -> str: ...

    @property
    def url(self) -> str: ...

    @property
    def size(self) -> int: ...


class Store(Protocol):
    """What the runner needs of storage (storage/ provides it)."""

    async def put(self, key: str, chunks: bytes | AsyncIterable[bytes]) -> StoredFileLike: ...

    async def read(self, key: str) -> bytes: ...

    def key_for_url(self, url: str) -> str | None: ...

    def url_for(self, key: str) -> str: ...


@dataclass(frozen=True)
class Collected:
    outputs: list[dict[str, Any]]  # JobOutput-shaped dicts, in node order
    texts: list[str]


async def collect(
    client: ComfyClient, result: PromptResult, store: Store, *, workflow: str, job_id: object
) -> Collected:
    outputs: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str]] = set()
    for file in result.files:
        ident = (file.filename, file.subfolder, file.type)
        if ident in seen or file.type == "input":
            continue  # the same file reported twice, or one of our own inputs echoed back
        seen.add(ident)
        data = await client.view(file.filename, file.subfolder, file.type)
        name = f"{file.subfolder}_{file.filename}" if file.subfolder else file.filename
        stored = await store.put(f"workflows/{workflow}/{job_id}/{name}", data)
        facts = inspect(file.filename, data)
        outputs.append(
            {
                "kind": facts.kind,
                "url": stored.url,
                "filename": stored.key.rsplit("/", 1)[-1],
                "mimeType": facts.mime_type,
                "node": file.node_id,
                "width": facts.width,
                "height": facts.height,
                "durationSeconds": facts.duration_seconds,
                "fps": facts.fps,
                "sampleRate": facts.sample_rate,
                "sizeBytes": stored.size,
                "temporary": file.type == "temp",
            }
        )
    texts = [str(v.value) for v in result.values if v.kind == "text"]
    return Collected(outputs, texts)


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
