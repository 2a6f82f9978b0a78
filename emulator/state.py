"""The emulator's server object: queue, history, sockets, cache and the worker task.

One worker runs one prompt at a time, like ComfyUI's prompt_worker thread; here it is
an asyncio task owned by the app's lifespan (started, cancelled and awaited there).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from comfygraph.emulator.cache import OutputCache
from comfygraph.emulator.executor import Executor
from comfygraph.emulator.faults import Faults
from comfygraph.emulator.files import Files
from comfygraph.emulator.fleet import model_files, restrict
from comfygraph.emulator.hub import Hub
from comfygraph.emulator.nodes import node_registry
from comfygraph.emulator.prompt_queue import PromptQueue

log = logging.getLogger("comfygraph.emulator")


class EmulatorState:
    def __init__(
        self,
        *,
        files: Files,
        faults: Faults,
        missing_nodes: tuple[str, ...] = (),
        missing_models: tuple[str, ...] = (),
    ) -> None:
        self.files = files
        self.faults = faults
        self.registry: dict[str, Any] = {}
        self.models: dict[str, list[str]] = {}
        self.install(missing_nodes, missing_models)
        self.hub = Hub()
        self.queue = PromptQueue(on_change=self._queue_changed)
        self.cache = OutputCache()
        self.executor = Executor(
            hub=self.hub, cache=self.cache, registry=self.registry, files=files, faults=faults
        )
        self.number = 0  # ComfyUI's PromptServer.number: priority counter
        self._worker: asyncio.Task[None] | None = None

    def install(self, missing_nodes: tuple[str, ...], missing_models: tuple[str, ...]) -> None:
        """The node classes and model files this worker has (all, less the missing)."""
        self.registry.clear()
        self.registry.update(restrict(node_registry(), missing_nodes, missing_models))
        self.models = model_files(missing_models)

    def _queue_changed(self) -> None:
        self.hub.send("status", {"status": self.queue.info()}, None)

    def reconnect_node(self, sid: str) -> str | None:
        """The node to announce to a socket that reconnects while its prompt runs."""
        if self.executor.client_id == sid:
            return self.executor.last_node_id
        return None

    def next_number(self, *, front: bool) -> int:
        number = self.number
        self.number += 1
        return -number if front else number

    async def start(self) -> None:
        self.files.ensure()
        self.files.reset_temp()
        self._worker = asyncio.create_task(self._work(), name="comfy-emulator-worker")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None

    async def restart(self, install: tuple[tuple[str, ...], tuple[str, ...]] | None = None) -> None:
        """What a crashed-and-restarted ComfyUI looks like from outside: sockets dropped,
        the running prompt gone without a word, queue, history and caches empty, models
        unloaded. `install` = (missing nodes, missing models) it comes back with."""
        await self.stop()
        if install is not None:
            self.install(*install)
        self.faults.resident.clear()
        self.hub.drop_all(code=1012)
        self.queue.reset()
        self.cache.clear()
        self.faults.clear()
        self.executor.interrupt.clear()
        self.executor.client_id = None
        self.executor.last_node_id = None
        self.number = 0
        await self.start()

    async def _work(self) -> None:
        while True:
            task_id, item = await self.queue.get()
            try:
                status, result = await self.executor.execute(item)
            except Exception:  # an emulator bug must not kill the worker
                log.exception("emulator failed to run prompt %s", item[1])
                status = {"status_str": "error", "completed": False, "messages": []}
                result = {"outputs": {}, "meta": {}}
            self.queue.task_done(task_id, status, result)
            client_id: Any = item[3].get("client_id")
            if client_id is not None:
                self.hub.send("executing", {"node": None, "prompt_id": item[1]}, client_id)
