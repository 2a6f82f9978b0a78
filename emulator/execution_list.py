"""Which node runs next: ComfyUI's ExecutionList (comfy_execution/graph.py).

Nodes are added from each output back through its links (skipping cached upstream
nodes); among the nodes whose inputs are ready, output nodes go first, then nodes that
unblock an output, then nodes two steps from one, else the first added.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class ExecutionList:
    def __init__(
        self,
        prompt: dict[str, Any],
        is_output: Callable[[str], bool],
        is_cached: Callable[[str], bool],
    ) -> None:
        self._prompt = prompt
        self._is_output = is_output
        self._is_cached = is_cached
        self._pending: dict[str, None] = {}
        self._block_count: dict[str, int] = {}
        self._blocking: dict[str, set[str]] = {}

    def add(self, node_id: str) -> None:
        stack, links = [node_id], []
        while stack:
            current = stack.pop()
            if current in self._pending:
                continue
            self._pending[current] = None
            self._block_count[current] = 0
            self._blocking[current] = set()
            for value in self._prompt[current]["inputs"].values():
                if isinstance(value, list) and len(value) == 2:
                    source = str(value[0])
                    if not self._is_cached(source):
                        stack.append(source)
                    links.append((source, current))
        for source, target in links:
            if self._is_cached(source):
                continue
            self.add(source)
            if target not in self._blocking[source]:
                self._blocking[source].add(target)
                self._block_count[target] += 1

    def empty(self) -> bool:
        return not self._pending

    def next(self) -> str:
        ready = [n for n in self._pending if self._block_count[n] == 0]
        if not ready:
            raise RuntimeError("dependency cycle in prompt")
        for node_id in ready:
            if self._is_output(node_id):
                return node_id
        for node_id in ready:
            if any(self._is_output(b) for b in self._blocking[node_id]):
                return node_id
        for node_id in ready:
            for blocked in self._blocking[node_id]:
                if any(self._is_output(b) for b in self._blocking[blocked]):
                    return node_id
        return ready[0]

    def complete(self, node_id: str) -> None:
        for blocked in self._blocking.pop(node_id, set()):
            self._block_count[blocked] -= 1
        self._pending.pop(node_id, None)
        self._block_count.pop(node_id, None)
