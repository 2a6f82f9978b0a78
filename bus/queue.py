"""A bounded FIFO for one consumer, where items with a key coalesce (latest wins).

- ``put(item)`` appends; it is never dropped.
- ``put(item, key)`` replaces the pending item with the same key in place, or appends.
- ``put_marker(item)`` appends a barrier (at most one pending: a newer one replaces the
  older and moves to the tail). Keyed items put after it never coalesce with ones before.
- Every pending entry takes one of ``maxsize`` places; a put that needs a new place in a
  full queue raises :class:`QueueFull` and changes nothing, and the caller decides
  (the hub ends that subscriber with :meth:`fail`).

Puts never block and never suspend, so one producer can feed thousands of queues.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class QueueFull(Exception):
    pass


class _Cell(Generic[T]):
    __slots__ = ("item", "key")

    def __init__(self, item: T, key: Hashable | None) -> None:
        self.item = item
        self.key = key


class CoalescingQueue(Generic[T]):
    __slots__ = ("_cells", "_error", "_keyed", "_marker", "_maxsize", "_waiter")

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self._maxsize = maxsize
        self._cells: deque[_Cell[T]] = deque()
        self._keyed: dict[Hashable, _Cell[T]] = {}
        self._marker: _Cell[T] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._error: BaseException | None = None

    def __len__(self) -> int:
        return len(self._cells)

    @property
    def maxsize(self) -> int:
        return self._maxsize

    @property
    def failed(self) -> bool:
        return self._error is not None

    def put(self, item: T, key: Hashable | None = None) -> bool:
        """Queue ``item``; True when it replaced a pending item with the same key."""
        if self._error is not None:
            return False
        if key is not None and (cell := self._keyed.get(key)) is not None:
            cell.item = item
            return True
        if len(self._cells) >= self._maxsize:
            raise QueueFull
        cell = _Cell(item, key)
        self._cells.append(cell)
        if key is not None:
            self._keyed[key] = cell
        self._wake()
        return False

    def put_marker(self, item: T) -> None:
        if self._error is not None:
            return
        if self._marker is not None:
            self._cells.remove(self._marker)
        elif len(self._cells) >= self._maxsize:
            raise QueueFull
        self._keyed.clear()
        self._marker = _Cell(item, None)
        self._cells.append(self._marker)
        self._wake()

    def fail(self, error: BaseException) -> None:
        """Drop everything pending; ``get`` raises ``error`` from now on."""
        if self._error is None:
            self._error = error
        self._cells.clear()
        self._keyed.clear()
        self._marker = None
        self._wake()

    async def get(self) -> T:
        while not self._cells:
            if self._error is not None:
                raise self._error
            waiter = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                self._waiter = None
        cell = self._cells.popleft()
        if cell.key is not None and self._keyed.get(cell.key) is cell:
            del self._keyed[cell.key]
        elif cell is self._marker:
            self._marker = None
        return cell.item

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
