"""`comfygraph workers`: each configured worker's health, as the pool would see it."""

from __future__ import annotations

import asyncio
from typing import Any

from rich.console import Console
from rich.table import Table

from comfygraph.comfy.workers import Worker, WorkerPool
from comfygraph.db.scheduling import processing_counts, set_draining
from comfygraph.server.settings import Settings


async def check_workers(settings: Settings) -> list[Worker]:
    pool = WorkerPool(
        [(w.url, w.price_per_hour) for w in settings.comfy_workers],
        client_id="comfygraph-cli",
        request_timeout=5.0,
    )
    try:
        await pool.check_all()
        return list(pool.workers.values())
    finally:
        await pool.aclose()


def print_workers(workers: list[Worker]) -> None:
    table = Table("worker", "healthy", "queue", "device", "VRAM free / total", "$/hour")
    for w in workers:
        vram = (
            f"{(w.vram_free or 0) / 2**30:.1f} / {w.vram_total / 2**30:.1f} GiB"
            if w.vram_total
            else "-"
        )
        table.add_row(
            w.url,
            "yes" if w.healthy else "NO",
            "-" if w.queue_remaining is None else str(w.queue_remaining),
            w.device or "-",
            vram,
            "-" if w.price_per_hour is None else f"{w.price_per_hour:g}",
        )
    Console().print(table)


def run(settings: Settings) -> list[Worker]:
    return asyncio.run(check_workers(settings))


async def set_drain(conn: Any, url: str, draining: bool) -> int:
    """Record the drain (every replica reads it); returns jobs still running there."""
    await set_draining(conn, url, draining)
    return (await processing_counts(conn)).get(url, 0)
