"""A replica's ComfyUI runtime against emulators on real ports, for dispatch tests.

Events go to an in-process recorder (the runtime's publish sink) so tests can wait
on a job's terminal status with a deadline instead of polling or sleeping.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from comfygraph.comfy.templates import TemplateSet, load_templates
from comfygraph.db.jobs import create_job, get_job
from comfygraph.db.kinds import OutputType
from comfygraph.storage import LocalStorage
from comfygraph.studio.runtime import ComfyRuntime
from tests.comfy.conftest import png_bytes, wav_bytes, webp_bytes
from tests.db.factories import make_user

TERMINAL = {"completed", "failed", "cancelled"}


@dataclass
class Recorder:
    events: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def publish(self, channel: str, event: dict[str, Any], coalesce: str | None) -> None:
        self.events[channel].append(event)
        self.changed.set()

    async def wait(self, channel: str, predicate: Any, timeout: float = 30.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                for event in self.events[channel]:
                    if predicate(event):
                        return event
                self.changed.clear()
                await self.changed.wait()


@dataclass
class Harness:
    pool: asyncpg.Pool
    store: LocalStorage
    recorder: Recorder
    runtime: ComfyRuntime
    templates: TemplateSet
    user: asyncpg.Record

    async def upload(self, name: str, data: bytes) -> str:
        return (await self.store.put(f"uploads/{uuid.uuid4().hex}/{name}", data)).url

    async def sample_parameters(self, workflow: str) -> dict[str, Any]:
        """Valid values for every required parameter of a workflow (files uploaded)."""
        template = self.templates.get(workflow)
        assert template is not None
        files = {"IMAGE": ("in.png", png_bytes(64, 48)), "AUDIO": ("in.wav", wav_bytes(1.0)),
                 "VIDEO": ("in.webp", webp_bytes(6, 6.0))}  # fmt: skip
        values: dict[str, Any] = {}
        for p in template.parameters:
            if not p.required:
                continue
            if p.is_file:
                url = await self.upload(*files[p.type])
                values[p.name] = [url] * max(p.min_items, 2) if p.is_list else url
            elif p.choices:
                values[p.name] = p.choices[0]
            elif p.type == "STRING":
                values[p.name] = "a pink tennis shoe"
            elif p.type in ("INT", "FLOAT"):
                values[p.name] = p.default if p.default is not None else (p.min or 1)
            elif p.type == "BOOLEAN":
                values[p.name] = True
        return values

    async def submit(
        self, workflow: str, parameters: Mapping[str, Any] | None = None, **columns: Any
    ) -> tuple[OutputType, uuid.UUID]:
        """Insert a PENDING job as submitJob will (validated values) and wake dispatch."""
        from comfygraph.comfy.templates import validate

        template = self.templates.get(workflow)
        kind = OutputType(template.output_type.lower()) if template else OutputType.IMAGE
        values = dict(
            parameters if parameters is not None else await self.sample_parameters(workflow)
        )
        clean = validate(template, values)[0] if template else values
        async with self.pool.acquire() as conn:
            row, _ = await create_job(conn, kind, user_id=self.user["id"], workflow_name=workflow,
                                      parameters=clean, **columns)  # fmt: skip
        self.runtime.dispatcher.wake()
        return kind, row["id"]

    async def finished(self, kind: OutputType, job_id: uuid.UUID, timeout: float = 30.0) -> Any:
        await self.recorder.wait(
            f"job:{job_id}", lambda e: e["type"] == "status" and e["status"] in TERMINAL, timeout
        )
        async with self.pool.acquire() as conn:
            return await get_job(conn, kind, job_id)


async def start_harness(
    pool: asyncpg.Pool, tmp: Path, workers: list[tuple[str, float | None]], **options: Any
) -> Harness:
    store = LocalStorage(tmp / "files", "http://files.test")
    recorder = Recorder()
    templates = load_templates()
    options.setdefault("lease_s", 30.0)
    options.setdefault("health_interval", 0.5)
    options.setdefault("poll_interval", 0.2)
    options.setdefault("unavailable_after", 3.0)
    runtime = ComfyRuntime.build(pool=pool, workers=workers, templates=templates, store=store,
                                 publish=recorder.publish, **options)  # fmt: skip
    await runtime.start()
    async with pool.acquire() as conn:
        user = await make_user(conn)
    return Harness(pool, store, recorder, runtime, templates, user)
