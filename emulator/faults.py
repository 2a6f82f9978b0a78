"""Fault injection and pacing: speed, random failures, one-shot fail/stall rules.

A stalled node waits until `release()` or an interrupt. What happens next mirrors
ComfyUI: a simulated model node notices the interrupt at its next ProgressBar tick and
stops right there; a core node (no progress hook) finishes and the interrupt is
noticed before the next node.
"""

from __future__ import annotations

import asyncio
import builtins
import random
from dataclasses import dataclass
from typing import Any, Literal

DEFAULT_FAILURE = "Emulated failure injected by the test harness"


@dataclass
class Rule:
    action: Literal["fail", "stall"]
    class_type: str | None = None
    node_id: str | None = None
    times: int = 1
    message: str = DEFAULT_FAILURE
    exception_type: str = "RuntimeError"

    def matches(self, class_type: str, node_id: str) -> bool:
        return (self.class_type in (None, class_type)) and (self.node_id in (None, node_id))

    def describe(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "class_type": self.class_type,
            "node_id": self.node_id,
            "times": self.times,
        }


_EXCEPTION_TYPES: dict[str, type[Exception]] = {}


def exception_class(dotted: str) -> type[Exception]:
    """An exception class whose `module.Name` reads as `dotted` in execution_error."""
    if dotted in _EXCEPTION_TYPES:
        return _EXCEPTION_TYPES[dotted]
    module, _, name = dotted.rpartition(".")
    found = None if module else getattr(builtins, name, None)
    if isinstance(found, type) and issubclass(found, Exception):
        kind: type[Exception] = found
    else:
        kind = type(name or "RuntimeError", (RuntimeError,), {"__module__": module or "builtins"})
    _EXCEPTION_TYPES[dotted] = kind
    return kind


class Faults:
    def __init__(self, *, speed: float, fail_rate: float, seed: int | None) -> None:
        self.speed = speed
        self.fail_rate = fail_rate
        self.rng = random.Random(seed)
        self.rules: list[Rule] = []
        self.stalled: dict[str, asyncio.Event] = {}
        # Model loading (off at 0): a loader whose model differs from the one its class
        # holds now waits this many wall seconds (not divided by speed), like a GPU
        # moving weights into VRAM; a loader cached by ComfyUI never runs, so never loads.
        self.model_load_seconds = 0.0
        self.model_loads = 0
        self.resident: dict[str, str] = {}  # loader class_type -> model it holds
        self.devices: Any = None  # when set, /system_stats answers these devices

    async def load_model(self, class_type: str, name: str) -> None:
        if self.resident.get(class_type) == name:
            return
        self.resident[class_type] = name
        if self.model_load_seconds > 0:
            self.model_loads += 1
            await asyncio.sleep(self.model_load_seconds)

    def add(self, rule: Rule) -> None:
        self.rules.append(rule)

    def take(self, class_type: str, node_id: str) -> Rule | None:
        """The first rule matching this node, consumed once."""
        for rule in self.rules:
            if rule.matches(class_type, node_id):
                rule.times -= 1
                if rule.times <= 0:
                    self.rules.remove(rule)
                return rule
        return None

    def random_failure(self) -> bool:
        return self.fail_rate > 0 and self.rng.random() < self.fail_rate

    def seconds(self, simulated: float) -> float:
        return simulated / self.speed

    async def stall(self, node_id: str, interrupted: asyncio.Event) -> None:
        release = asyncio.Event()
        self.stalled[node_id] = release
        try:
            waiters = [
                asyncio.ensure_future(release.wait()),
                asyncio.ensure_future(interrupted.wait()),
            ]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
        finally:
            self.stalled.pop(node_id, None)

    def release(self) -> int:
        events = list(self.stalled.values())
        for event in events:
            event.set()
        return len(events)

    def clear(self) -> None:
        self.rules.clear()

    def describe(self) -> dict[str, Any]:
        return {
            "speed": self.speed,
            "fail_rate": self.fail_rate,
            "rules": [rule.describe() for rule in self.rules],
            "stalled": sorted(self.stalled),
            "model_load_seconds": self.model_load_seconds,
            "model_loads": self.model_loads,
        }
