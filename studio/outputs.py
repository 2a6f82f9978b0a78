"""A finished prompt's files, streamed from the worker's /view into storage: the ComfyUI
wire (comfy/) and the store (storage/) joined here.

Each file passes through in chunks: the first 64 KiB decide its content type (sniffed,
for S3's object metadata), every chunk goes on to storage and to a temporary file, and
the media facts are read from that file's headers in a thread. No output is ever held
whole in memory, and nothing blocks the event loop.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from comfygraph.comfy.client import ComfyClient, PromptResult
from comfygraph.comfy.media import MediaFacts, inspect_file
from comfygraph.comfy.outputs import Collected
from comfygraph.storage import Storage, StoredFile
from comfygraph.studio.sniff import sniff

HEAD_BYTES = 64 * 1024


async def collect(
    client: ComfyClient, result: PromptResult, store: Storage, *, workflow: str, job_id: object
) -> Collected:
    outputs: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str]] = set()
    for file in result.files:
        ident = (file.filename, file.subfolder, file.type)
        if ident in seen or file.type == "input":
            continue  # the same file reported twice, or one of our own inputs echoed back
        seen.add(ident)
        name = f"{file.subfolder}_{file.filename}" if file.subfolder else file.filename
        key = f"workflows/{workflow}/{job_id}/{name}"
        async with client.view_stream(file.filename, file.subfolder, file.type) as chunks:
            stored, facts = await store_stream(store, key, file.filename, chunks)
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


async def store_stream(
    store: Storage, key: str, filename: str, chunks: AsyncIterator[bytes]
) -> tuple[StoredFile, MediaFacts]:
    """Stream `chunks` into storage at `key`; the file's media facts as well."""
    head = b""
    async for chunk in chunks:
        head += chunk
        if len(head) >= HEAD_BYTES:
            break
    kind = sniff(head)
    fd, name = tempfile.mkstemp(prefix="comfygraph-output-")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as spool:

            async def tee() -> AsyncIterator[bytes]:
                await asyncio.to_thread(spool.write, head)
                yield head
                async for chunk in chunks:
                    await asyncio.to_thread(spool.write, chunk)
                    yield chunk

            stored = await store.put(key, tee(), content_type=kind.mime if kind else None)
        facts = await asyncio.to_thread(inspect_file, filename, path)
    finally:
        await asyncio.to_thread(path.unlink, missing_ok=True)
    return stored, facts
