"""Helpers shared by the benchmarks: timing summaries and a scratch database."""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


async def time_async(
    fn: Callable[[], Awaitable[object]], *, runs: int, warmup: int = 20
) -> list[float]:
    """Milliseconds per call of `fn`, after `warmup` untimed calls."""
    for _ in range(warmup):
        await fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def summary(samples: list[float]) -> str:
    return (
        f"p50 {percentile(samples, 50):.3f} ms  p99 {percentile(samples, 99):.3f} ms  "
        f"mean {statistics.fmean(samples):.3f} ms  (n={len(samples)})"
    )
