"""What the networked backends share: a listening link that can be lost and re-made.

A :class:`ListeningBackend` is a broadcaster ``BroadcastBackend`` (it also works as
``Broadcast(backend=...)``) with one dedicated listening connection, a separate way to
publish, and a supervisor task that

- notices a dead link: the subclass reports a closed connection at once, and a ping every
  ``ping_interval`` unanswered within ``command_timeout`` catches a half-open one;
- reconnects with exponential backoff and jitter, re-subscribes every wanted channel,
  and only then emits one :class:`ReconnectEvent` per wanted channel, ahead of any
  event that arrived on the new link (those are held back until the markers are out).

Received events wait in one queue for the hub's dispatcher. When more than ``BACKLOG`` are
waiting, a backend that can push back does (the Redis reader stops reading, so the socket
fills and Redis applies its pubsub output-buffer limit); asyncpg hands notifications over
without a way to pause, so PostgreSQL relies on the dispatcher keeping up.

``subscribe``/``unsubscribe`` only change the *wanted* set and then reconcile the link
with it under a lock, so calls in any order converge, a link operation is never
interrupted halfway by a cancelled caller, and while the link is down they return at
once (the reconnect subscribes and the marker follows).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from broadcaster import BroadcastBackend, Event

from comfygraph.bus.errors import BusUnavailable
from comfygraph.bus.markers import Reconnected
from comfygraph.bus.tasks import cancel_and_wait
from comfygraph.domain.backoff import backoff

log = logging.getLogger(__name__)

BACKLOG = 10_000


@dataclass(frozen=True, slots=True)
class BackendOptions:
    """Timeouts and limits of a networked backend (STYLE habit 10)."""

    connect_timeout: float = 10.0
    #: one LISTEN, SUBSCRIBE, ping, NOTIFY or PUBLISH
    command_timeout: float = 5.0
    #: how often the listening link is pinged: a silent one is noticed within
    #: ping_interval + command_timeout
    ping_interval: float = 10.0
    backoff_initial: float = 0.1
    backoff_max: float = 5.0
    #: connections used for publishing, never for listening
    publish_connections: int = 4
    #: application_name (PostgreSQL) / CLIENT SETNAME (Redis) prefix: "<name>/listen", "/publish"
    client_name: str = "comfygraph-events"

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "command_timeout", "ping_interval", "backoff_initial"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.backoff_max < self.backoff_initial or self.publish_connections < 1:
            raise ValueError("backoff_max must be >= backoff_initial, publish_connections >= 1")
        if not self.client_name or any(c.isspace() for c in self.client_name):
            raise ValueError("client_name must be non-empty and without spaces (CLIENT SETNAME)")


class ReconnectEvent(Event):
    """Emitted per wanted channel after a reconnect; never sent over the wire."""

    def __init__(self, channel: str, marker: Reconnected) -> None:
        super().__init__(channel, "")
        self.marker = marker


class ListeningBackend(BroadcastBackend):
    def __init__(self, options: BackendOptions) -> None:
        self.options = options
        self.reconnects = 0
        self._wanted: set[str] = set()
        self._listening: set[str] = set()
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self._room = asyncio.Event()
        self._room.set()
        self._held: list[Event] | None = None
        self._lock = asyncio.Lock()
        self._alive = False
        self._lost = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._ops: set[asyncio.Task[None]] = set()

    # -- what a subclass provides --------------------------------------------------------
    async def _open_publisher(self) -> None:
        raise NotImplementedError

    async def _close_publisher(self) -> None:
        raise NotImplementedError

    async def _open_link(self) -> None:
        """Connect the listening link (no channels yet); report its loss with _link_lost."""
        raise NotImplementedError

    async def _close_link(self) -> None:
        """Drop the listening link, if any; never raises."""
        raise NotImplementedError

    async def _listen(self, channels: list[str]) -> None:
        """Receive these channels on the live link; return once the broker confirmed."""
        raise NotImplementedError

    async def _unlisten(self, channel: str) -> None:
        raise NotImplementedError

    async def _ping(self) -> None:
        raise NotImplementedError

    # -- for subclasses --------------------------------------------------------------
    def _deliver(self, channel: str, message: str) -> None:
        event = Event(channel, message)
        if self._held is not None:
            self._held.append(event)
        else:
            self._events.put_nowait(event)
            if self._events.qsize() >= BACKLOG:
                self._room.clear()

    async def _wait_for_room(self) -> None:
        """For readers that can pause: return once the dispatcher caught up."""
        if not self._room.is_set():
            await self._room.wait()

    def _link_lost(self) -> None:
        self._alive = False
        self._lost.set()

    # -- BroadcastBackend ------------------------------------------------------------
    @property
    def listening(self) -> frozenset[str]:
        """Channels the live link receives now (empty while it is down)."""
        return frozenset(self._listening)

    async def connect(self) -> None:
        timeout = self.options.connect_timeout
        try:
            async with asyncio.timeout(timeout):
                await self._open_publisher()
                await self._open_link()
        except Exception as exc:
            await self._close_link()
            await self._close_publisher()
            raise BusUnavailable(f"{type(self).__name__} could not connect: {exc!r}") from exc
        self._alive = True
        self._supervisor = asyncio.create_task(self._supervise(), name="events-supervisor")

    async def disconnect(self) -> None:
        await cancel_and_wait(self._supervisor)
        self._supervisor = None
        if self._ops:
            await asyncio.wait(self._ops)
        async with self._lock:
            self._alive = False
            self._listening.clear()
            await self._close_link()
        await self._close_publisher()

    async def subscribe(self, channel: str) -> None:
        self._wanted.add(channel)
        await self._reconcile_soon(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._wanted.discard(channel)
        await self._reconcile_soon(channel)

    async def next_published(self) -> Event:
        event = await self._events.get()
        if not self._room.is_set() and self._events.qsize() <= BACKLOG // 2:
            self._room.set()
        return event

    # -- internals ---------------------------------------------------------------------
    async def _reconcile_soon(self, channel: str) -> None:
        # A task of our own, so a caller cancelled mid-way never interrupts a command on
        # the link (asyncpg would be left "in progress"); disconnect() awaits stragglers.
        task = asyncio.create_task(self._reconcile(channel))
        self._ops.add(task)
        task.add_done_callback(self._ops.discard)
        await asyncio.shield(task)

    async def _reconcile(self, channel: str) -> None:
        if not self._alive:
            return  # the reconnect takes the wanted set as it is then
        async with self._lock:
            want, have = channel in self._wanted, channel in self._listening
            if not self._alive or want == have:
                return
            try:
                async with asyncio.timeout(self.options.command_timeout):
                    if want:
                        await self._listen([channel])
                        self._listening.add(channel)
                    else:
                        self._listening.discard(channel)
                        await self._unlisten(channel)
            except Exception as exc:
                # The link is suspect: the supervisor replaces it and re-subscribes.
                command = "subscribe" if want else "unsubscribe"
                log.warning("broadcast link failed to %s %r: %r", command, channel, exc)
                self._link_lost()

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                await self._until_lost()
                lost_at = loop.time()
                log.warning("%s: broadcast link lost, reconnecting", type(self).__name__)
                async with self._lock:
                    self._link_lost()
                    self._listening.clear()
                    await self._close_link()
                await self._reconnect(lost_at)
            except Exception:  # a bug here must not leave the process deaf for good
                log.exception("broadcast supervisor failed; starting over")
                self._link_lost()
                await asyncio.sleep(self.options.backoff_max)

    async def _until_lost(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.options.ping_interval):
                    await self._lost.wait()
                return
            try:
                async with self._lock:
                    if not self._alive:
                        return
                    async with asyncio.timeout(self.options.command_timeout):
                        await self._ping()
            except Exception as exc:
                log.warning("broadcast link did not answer a ping: %r", exc)
                return

    async def _reconnect(self, lost_at: float) -> None:
        loop = asyncio.get_running_loop()
        attempts = 0
        while True:
            attempts += 1
            async with self._lock:
                self._lost.clear()
                self._held = []
                try:
                    async with asyncio.timeout(self.options.connect_timeout):
                        await self._open_link()
                        await self._listen_wanted()
                except Exception as exc:
                    self._held = None
                    self._listening.clear()
                    await self._close_link()
                    delay = self._backoff(attempts)
                    log.warning("reconnect attempt %d failed (%r); next in %.2fs", attempts,
                                exc, delay)  # fmt: skip
                else:
                    self._alive = True
                    self.reconnects += 1
                    marker = Reconnected(self.reconnects, loop.time() - lost_at, attempts)
                    self._emit(ReconnectEvent(channel, marker) for channel in self._wanted)
                    held, self._held = self._held, None
                    self._emit(held)
                    log.warning("broadcast link back after %.2fs", marker.downtime)
                    return
            await asyncio.sleep(delay)

    async def _listen_wanted(self) -> None:
        # Subscriptions may change while we wait on the broker (they skip the lock while
        # the link is down): repeat until the link listens to exactly the wanted set.
        while (missing := self._wanted - self._listening) or self._listening - self._wanted:
            if missing:
                await self._listen(sorted(missing))
                self._listening |= missing
            for channel in self._listening - self._wanted:
                self._listening.discard(channel)
                await self._unlisten(channel)

    def _emit(self, events: Iterable[Event]) -> None:
        for event in events:
            self._events.put_nowait(event)

    def _backoff(self, attempts: int) -> float:
        return backoff(attempts, self.options.backoff_initial, self.options.backoff_max)
