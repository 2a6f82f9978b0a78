"""One owner for every long-running loop of a replica (dispatch, leases, worker health,
the websocket connection log).

A loop that raises is logged with its traceback (a database outage: one line) and
started again after a backoff that doubles up to a ceiling; restarts are counted (for
/metrics) and a loop that keeps failing is reported (for /readyz). A loop that returns
has finished its work and is not restarted. Closing the supervisor cancels every loop
and waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from comfygraph.db.unreachable import database_down

log = logging.getLogger(__name__)

Loop = Callable[[], Awaitable[None]]


@dataclass
class LoopState:
    restarts: int = 0
    failures_in_a_row: int = 0
    started_at: float = 0.0
    last_error: str | None = None


class Supervisor:
    def __init__(
        self,
        *,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        failing_after: int = 3,
        healthy_after: float = 60.0,
    ) -> None:
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        # A loop is "failing" after this many failures in a row; a run that lasted
        # `healthy_after` seconds before it failed starts the count again.
        self.failing_after, self.healthy_after = failing_after, healthy_after
        self.loops: dict[str, LoopState] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, name: str, loop: Loop) -> asyncio.Task[None]:
        """Run `loop` under supervision (again, if a previous run of `name` finished)."""
        task = self._tasks.get(name)
        if task is not None and not task.done():
            return task
        self.loops.setdefault(name, LoopState())
        task = asyncio.create_task(self._supervise(name, loop), name=name)
        self._tasks[name] = task
        return task

    async def stop(self, name: str) -> None:
        task = self._tasks.pop(name, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def aclose(self) -> None:
        for name in list(self._tasks):
            await self.stop(name)

    def failing(self) -> dict[str, str]:
        """Loops that keep failing (and have not stayed up since), with their last error."""
        now = asyncio.get_running_loop().time()
        return {
            name: state.last_error or "failed"
            for name, state in self.loops.items()
            if state.failures_in_a_row >= self.failing_after
            and now - state.started_at < self.healthy_after
        }

    async def _supervise(self, name: str, loop: Loop) -> None:
        state = self.loops[name]
        clock = asyncio.get_running_loop().time
        while True:
            state.started_at = clock()
            try:
                await loop()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if clock() - state.started_at >= self.healthy_after:
                    state.failures_in_a_row = 0
                state.failures_in_a_row += 1
                state.restarts += 1
                state.last_error = f"{type(exc).__name__}: {exc}"[:200]
                delay = min(
                    self.backoff_max,
                    self.backoff_initial * 2 ** (state.failures_in_a_row - 1),
                )
                if database_down(exc):  # an outage, not a bug: one line, no traceback
                    log.warning("loop %s: database unreachable (%s); restarting in %.1f s",
                                name, state.last_error, delay)  # fmt: skip
                else:
                    log.exception("loop %s failed; restarting in %.1f s", name, delay)
                await asyncio.sleep(delay)
            else:
                state.failures_in_a_row, state.last_error = 0, None
                return
