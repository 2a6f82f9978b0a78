"""A job's overall progress across its whole graph, from the worker's messages.

Each node has a weight: its share of past run time for that workflow (equal shares
until history exists). Cached nodes count as done. The running node counts by its
own `progress` steps. The result never decreases and stays below 100 until the
caller declares the job complete: 100 belongs to COMPLETED alone.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

CEILING = 99.9


class ProgressModel:
    def __init__(
        self,
        graph: Mapping[str, Any],
        weights: Mapping[str, float] | None = None,
        *,
        clock: Any = time.monotonic,
    ) -> None:
        known = {k: v for k, v in (weights or {}).items() if k in graph and v > 0}
        default = (sum(known.values()) / len(known)) if known else 1.0
        self.weights = {node: known.get(node, default) for node in graph}
        self.class_types = {node: str(spec.get("class_type", "")) for node, spec in graph.items()}
        self._total = sum(self.weights.values()) or 1.0
        self._done: set[str] = set()
        self._fraction: dict[str, float] = {}
        self._clock = clock
        self._started = clock()
        self._current: str | None = None
        self._current_since = 0.0
        self.durations: dict[str, float] = {}  # node -> seconds it ran (not cached ones)
        self._best = 0.0

    # -- what the worker said -------------------------------------------------------
    def cached(self, nodes: Iterable[str]) -> None:
        self._done.update(n for n in nodes if n in self.weights)

    def executing(self, node: str | None) -> None:
        """A node started (or, with None, the prompt finished): the previous one is done."""
        now = self._clock()
        if self._current is not None and self._current != node:
            self._finish(self._current, now)
        if node is not None and node in self.weights and node not in self._done:
            self._current, self._current_since = node, now
        else:
            self._current = None

    def node_progress(self, node: str | None, value: float, maximum: float) -> None:
        node = node or self._current
        if node in self.weights and maximum > 0 and node not in self._done:
            self._fraction[node] = max(self._fraction.get(node, 0.0), min(value / maximum, 1.0))

    def executed(self, node: str) -> None:
        if node in self.weights and node not in self._done:
            self._finish(node, self._clock())

    def node_states(self, nodes: Mapping[str, Mapping[str, Any]]) -> None:
        """ComfyUI's progress_state: every node that left 'pending', with value/max."""
        for node, state in nodes.items():
            if state.get("state") == "finished":
                self.executed(node)
            else:
                self.node_progress(node, float(state.get("value", 0)), float(state.get("max", 0)))

    def _finish(self, node: str, now: float) -> None:
        if node == self._current:
            self.durations[node] = now - self._current_since
            self._current = None
        self._done.add(node)
        self._fraction.pop(node, None)

    # -- what the job shows ---------------------------------------------------------
    @property
    def current_node(self) -> str | None:
        return self._current

    @property
    def percent(self) -> float:
        done = sum(self.weights[n] for n in self._done)
        partial = sum(self.weights[n] * f for n, f in self._fraction.items())
        value = min(CEILING, 100.0 * (done + partial) / self._total)
        self._best = max(self._best, value)  # monotonic, whatever the messages' order
        return round(self._best, 2)

    def eta_seconds(self, expected_total: float | None = None) -> float | None:
        """Seconds left: from the workflow's past total when known, else extrapolated."""
        fraction = self.percent / 100.0
        elapsed = self._clock() - self._started
        if expected_total is not None and expected_total > 0:
            return round(max(0.0, expected_total * (1.0 - fraction)), 1)
        if fraction <= 0.02:
            return None
        return round(elapsed * (1.0 - fraction) / fraction, 1)
