"""Retry delays: doubling from `initial`, capped at `maximum`, with jitter so that
clients that failed together do not return together. One definition for the event bus
links, ComfyUI websockets and webhook deliveries."""

from __future__ import annotations

import random


def backoff(
    attempt: int, initial: float, maximum: float, jitter: tuple[float, float] = (0.5, 1.0)
) -> float:
    """Seconds to wait before attempt `attempt + 1` (attempt 1 waits about `initial`)."""
    base = min(maximum, initial * 2 ** min(max(0, attempt - 1), 60))
    return base * random.uniform(*jitter)
