"""The send path of one websocket, so a stalled client only ever stalls itself.

A stream never waits for a socket: it hands the shared frame to each member's outbox and
moves on. While the socket is writable the frame is written right then (no task, no
queue: a send that does not block never suspends); a send that would block is finished
by a writer task of that socket, and what comes meanwhile waits in a bounded queue. Per
subscription, a transient frame (a progress tick) replaces one of the same subscription
still waiting; other frames are never dropped. When a subscription needs a place the
queue no longer has, that subscription alone ends with SUBSCRIBER_OVERFLOW (its waiting
frames are dropped for that one error frame) and the client re-subscribes: nothing grows
without bound.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from graphql import GraphQLError
from starlette.websockets import WebSocket, WebSocketDisconnect

from comfygraph.server.realtime.frames import Frame, Kind, Spelling
from comfygraph.server.realtime.wire import Wire

log = logging.getLogger(__name__)

SUBSCRIBER_OVERFLOW = "SUBSCRIBER_OVERFLOW"
OVERFLOW = Frame.error(
    [
        GraphQLError(
            "this subscription fell too far behind and was ended: subscribe again",
            extensions={"code": SUBSCRIBER_OVERFLOW},
        )
    ]
)
# What ends a websocket's writer: the peer went away, or the socket was closed.
_GONE = (WebSocketDisconnect, OSError, RuntimeError)


class State(enum.Enum):
    ACTIVE = 1
    ENDED = 2  # its last frame (complete or error) is queued
    GONE = 3  # the client completed it, or the connection closed: nothing more is sent


class Stream(Protocol):
    def remove(self, member: Member) -> None: ...


class Member:
    """One subscription of one connection: where a shared stream's frames go."""

    __slots__ = ("on_end", "operation_id", "outbox", "spelling", "state", "stream")

    def __init__(
        self,
        outbox: Outbox,
        spelling: Spelling,
        operation_id: str,
        on_end: Callable[[Member], None],
    ) -> None:
        self.outbox = outbox
        self.spelling = spelling
        self.operation_id = operation_id
        self.on_end = on_end
        self.state = State.ACTIVE
        self.stream: Stream | None = None

    def deliver(self, frame: Frame) -> None:
        """Queue a frame of the stream (a terminal one ends this subscription)."""
        if self.state is not State.ACTIVE:
            return
        if frame.terminal:
            self.end(frame)
        elif not self.outbox.put(self, frame):
            self.end(OVERFLOW)

    def end(self, frame: Frame) -> None:
        """Send `frame` as this subscription's last word and leave the stream."""
        if self.state is not State.ACTIVE:
            return
        self.state = State.ENDED
        self.outbox.put_last(self, frame)
        self._detach()

    def leave(self) -> None:
        """The client is no longer interested (it completed, or it went away)."""
        if self.state is State.GONE:
            return
        self.state = State.GONE
        self.outbox.forget(self)
        self._detach()

    def _detach(self) -> None:
        stream, self.stream = self.stream, None
        if stream is not None:
            stream.remove(self)
        self.on_end(self)

    def __repr__(self) -> str:
        return f"<Member {self.operation_id!r} {self.state.name}>"


class _Entry:
    __slots__ = ("frame", "member", "text")

    def __init__(self, member: Member | None, frame: Frame | None, text: str = "") -> None:
        self.member = member
        self.frame = frame
        self.text = text


# Shared by every idle outbox; never appended to (see Outbox._queue).
_NO_ENTRIES: deque[_Entry] = deque(maxlen=0)


def _send_now(coro: Coroutine[Any, Any, None]) -> asyncio.Future[Any]:
    """Run `coro` right now, in the caller's turn of the loop (a websocket send finishes
    without suspending while the socket is writable): StopIteration when it finished
    (its errors propagate); otherwise the future it waits on (the socket is paused),
    and `_finish` must take the coroutine over."""
    waiting = coro.send(None)  # StopIteration when it finished; its errors propagate
    if not isinstance(waiting, asyncio.Future):  # a bare yield (sleep(0)): re-run soon
        waiting = asyncio.get_running_loop().create_future()
        waiting.set_result(None)
    waiting._asyncio_future_blocking = False
    return waiting


async def _finish(coro: Coroutine[Any, Any, None], waiting: asyncio.Future[Any]) -> None:
    """Drive a coroutine that `_send_now` started and that suspended, to its end."""
    try:
        while True:
            try:
                await asyncio.wait([waiting])
            except asyncio.CancelledError:
                coro.throw(asyncio.CancelledError())
                raise
            try:
                waiting = _send_now(coro)
            except StopIteration:
                return
    finally:
        coro.close()


class Outbox:
    """Frames waiting for one websocket (at most `limit`, plus one last frame per
    subscription).

    While nothing waits, a frame is written at once, in the stream's turn: the socket
    write does not suspend while the socket is writable, and no task is involved. A send
    that would block (the client stopped reading) is finished by a writer task, which
    then writes what queued up meanwhile, in order, and ends when the queue is empty.
    """

    __slots__ = ("_entries", "_send", "_task", "_transient", "dead", "limit", "sent", "wire")

    def __init__(self, websocket: WebSocket, limit: int) -> None:
        self._send = websocket.send
        #: the socket itself, for data frames made once per event (wire.py)
        self.wire = Wire.of(websocket.scope)
        self.limit = limit
        # Made when a writer task is needed (an empty deque alone is 600 bytes).
        self._entries: deque[_Entry] = _NO_ENTRIES
        self._transient: dict[Member, _Entry] = {}
        self._task: asyncio.Task[None] | None = None
        self.dead = False
        self.sent = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def writing(self) -> bool:
        """A writer task is busy (the socket is slow)."""
        return self._task is not None

    async def aclose(self) -> None:
        """Stop writing; what is still queued is dropped (the socket is going away)."""
        self.dead = True
        self._entries = _NO_ENTRIES
        self._transient.clear()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])

    def put(self, member: Member, frame: Frame) -> bool:
        """Queue one of `member`'s frames; False when there is no room for it."""
        if self.dead:
            return True  # the connection is closing: nothing to keep
        if self._task is None:
            wire = self.wire
            if (
                wire is not None
                and frame.kind is Kind.NEXT
                and wire.write(member.spelling.wire(frame))
            ):
                self.sent += 1
                return True
            self._write(member.spelling.render(frame))
            return True
        if frame.transient:
            waiting = self._transient.get(member)
            if waiting is not None:
                waiting.frame = frame
                return True
        if len(self._entries) >= self.limit:
            return False
        entry = _Entry(member, frame)
        self._queue().append(entry)
        if frame.transient:
            self._transient[member] = entry
        else:
            # Later ticks must queue behind this frame, not replace one before it.
            self._transient.pop(member, None)
        return True

    def put_last(self, member: Member, frame: Frame) -> None:
        """Queue `member`'s final frame, dropping what it still had waiting (always fits:
        one per subscription)."""
        if self.dead:
            return
        self.forget(member)
        if self._task is None:
            self._write(member.spelling.render(frame))
        else:
            self._queue().append(_Entry(member, frame))

    def put_text(self, text: str, *, droppable: bool = False) -> None:
        """A frame of the connection itself (ping, ka); a droppable one only when there is room."""
        if self.dead or (droppable and len(self._entries) >= self.limit):
            return
        if self._task is None:
            self._write(text)
        else:
            self._queue().append(_Entry(None, None, text))

    def forget(self, member: Member) -> None:
        """Drop `member`'s waiting frames."""
        self._transient.pop(member, None)
        if any(entry.member is member for entry in self._entries):
            self._entries = deque(e for e in self._entries if e.member is not member)

    def _queue(self) -> deque[_Entry]:
        if self._entries is _NO_ENTRIES:
            self._entries = deque()
        return self._entries

    def _write(self, text: str) -> None:
        coro = self._send({"type": "websocket.send", "text": text})
        try:
            waiting = _send_now(coro)
        except StopIteration:
            self.sent += 1
            return
        except _GONE as exc:
            self._die(exc)
            return
        self._task = asyncio.create_task(self._drain(coro, waiting), name="ws-outbox")

    async def _drain(self, coro: Coroutine[Any, Any, None], waiting: asyncio.Future[Any]) -> None:
        try:
            await _finish(coro, waiting)
            self.sent += 1
            while self._entries:  # (forget() may replace the deque meanwhile)
                entry = self._entries.popleft()
                member = entry.member
                if member is None:
                    text = entry.text
                else:
                    if self._transient.get(member) is entry:
                        del self._transient[member]
                    if member.state is State.GONE:
                        continue
                    assert entry.frame is not None
                    text = member.spelling.render(entry.frame)
                await self._send({"type": "websocket.send", "text": text})
                self.sent += 1
        except _GONE as exc:
            self._die(exc)
        finally:
            if self._task is asyncio.current_task():
                self._task = None
                self._entries = _NO_ENTRIES

    def _die(self, exc: BaseException) -> None:
        log.debug("websocket writer stopped: %r", exc)
        self.dead = True
        self._entries = _NO_ENTRIES
        self._transient.clear()
