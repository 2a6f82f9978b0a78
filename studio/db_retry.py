"""A write the job must not lose, retried through a short database outage.

The runner's writes (the prompt id before submitting, the final transition with the
outputs, the cost) are each one statement or one transaction on a pooled connection.
When one fails because the database is out of reach (db.unreachable), it is tried again
on a fresh connection, with backoff, until `bound` seconds have passed since the first
failure; the caller awaits it, so its writes keep their order. Past the bound the job's
lease has run out (the bound is the lease length) and another replica may own the job:
DatabaseGone tells the caller to stop and leave the job to lease recovery.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from comfygraph.db.unreachable import database_down
from comfygraph.domain.backoff import backoff

log = logging.getLogger(__name__)
T = TypeVar("T")


class DatabaseGone(Exception):
    """The database stayed out of reach for the whole bound."""

    def __init__(self, what: str, seconds: float, attempts: int) -> None:
        self.what, self.seconds, self.attempts = what, seconds, attempts
        super().__init__(
            f"database unreachable for {seconds:.1f} s ({attempts} attempts) while {what}"
        )


async def retrying(
    pool: asyncpg.Pool,
    write: Callable[[asyncpg.Connection], Awaitable[T]],
    *,
    what: str,
    bound: float,
    initial: float = 0.1,
    maximum: float = 2.0,
) -> T:
    """`await write(conn)` on a pooled connection, again while the database is down.

    `write` may run more than once: it must be one statement or one transaction, so a
    failed try changed nothing (a commit whose reply was lost is the caller's to see)."""
    first: float | None = None
    attempt = 0
    while True:
        try:
            async with pool.acquire() as conn:
                result = await write(conn)
        except Exception as exc:
            if not database_down(exc):
                raise
            now = time.monotonic()
            first = now if first is None else first
            attempt += 1
            waited = now - first
            if waited >= bound:
                raise DatabaseGone(what, waited, attempt) from exc
            if attempt == 1:
                log.warning(
                    "database unreachable while %s (%s: %s); retrying for up to %.0f s",
                    what, type(exc).__name__, exc, bound,
                )  # fmt: skip
            await asyncio.sleep(min(backoff(attempt, initial, maximum), bound - waited))
            continue
        if attempt:
            log.info("database back: %s after %d attempts", what, attempt + 1)
        return result
