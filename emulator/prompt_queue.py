"""ComfyUI's PromptQueue: a priority heap, the running prompt and the history.

Items are `[number, prompt_id, prompt, extra_data, outputs_to_execute]`. Pending items
are reported in heap-array order (not sorted), exactly as ComfyUI returns them, and
every change calls `on_change` (which broadcasts a `status` message).
"""

from __future__ import annotations

import asyncio
import copy
import heapq
import itertools
from collections.abc import Callable
from typing import Any

QueueItem = list[Any]
MAXIMUM_HISTORY_SIZE = 10000


class PromptQueue:
    def __init__(self, on_change: Callable[[], None]) -> None:
        self._on_change = on_change
        self._heap: list[tuple[float, str, int, QueueItem]] = []
        self._running: dict[int, QueueItem] = {}
        self._ids = itertools.count()
        self._wake = asyncio.Event()
        self.history: dict[str, dict[str, Any]] = {}

    def info(self) -> dict[str, Any]:
        return {"exec_info": {"queue_remaining": len(self._heap) + len(self._running)}}

    def put(self, item: QueueItem) -> None:
        # The counter breaks ties so items never compare their prompt dicts (ComfyUI
        # would raise there on a re-used prompt_id with an equal number).
        heapq.heappush(self._heap, (item[0], item[1], next(self._ids), item))
        self._wake.set()
        self._on_change()

    async def get(self) -> tuple[int, QueueItem]:
        while not self._heap:
            self._wake.clear()
            await self._wake.wait()
        _, _, _, item = heapq.heappop(self._heap)
        task_id = next(self._ids)
        self._running[task_id] = item
        self._on_change()
        return task_id, item

    def task_done(self, task_id: int, status: dict[str, Any], result: dict[str, Any]) -> None:
        item = self._running.pop(task_id)
        if len(self.history) >= MAXIMUM_HISTORY_SIZE:
            self.history.pop(next(iter(self.history)))
        self.history[item[1]] = {"prompt": item, "outputs": {}, "status": status}
        self.history[item[1]].update(result)
        self._on_change()

    def running(self) -> list[QueueItem]:
        return list(self._running.values())

    def pending(self) -> list[QueueItem]:
        return [entry[3] for entry in self._heap]

    def delete(self, prompt_id: str) -> bool:
        for index, entry in enumerate(self._heap):
            if entry[1] == prompt_id:
                self._heap.pop(index)
                heapq.heapify(self._heap)
                self._on_change()
                return True
        return False

    def wipe(self) -> None:
        self._heap.clear()
        self._on_change()

    def get_history(
        self, prompt_id: str | None = None, max_items: int | None = None, offset: int = -1
    ) -> dict[str, Any]:
        if prompt_id is not None:
            entry = self.history.get(prompt_id)
            return {prompt_id: copy.deepcopy(entry)} if entry is not None else {}
        if offset < 0 and max_items is not None:
            offset = len(self.history) - max_items
        out: dict[str, Any] = {}
        for index, key in enumerate(self.history):
            if index >= offset:
                out[key] = self.history[key]
                if max_items is not None and len(out) >= max_items:
                    break
        return out

    def reset(self) -> None:
        """Forget everything, as a restarted server does (no status broadcast: the
        sockets are gone too)."""
        self._heap.clear()
        self._running.clear()
        self.history.clear()
