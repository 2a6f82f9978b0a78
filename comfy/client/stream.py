"""One websocket per client: connect, reconnect with backoff, fan out parsed messages.

ComfyUI routes a prompt's events to the socket whose ``clientId`` matches the
prompt's ``client_id``, and a second socket with the same id silently orphans the
first. So a :class:`EventHub` owns the only socket of a client id and hands every
message to its subscribers (raw streams) and to the per-prompt trackers of
:class:`~comfy.client.job.Job`. Events for prompts nobody tracks yet are kept for a
while, because ComfyUI can send them before it answers POST /prompt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict, deque
from dataclasses import dataclass

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from comfygraph.comfy.errors import ComfyError, ProtocolError, WorkerUnavailable
from comfygraph.comfy.messages import (
    PreviewImage,
    ProgressText,
    WsMessage,
    is_json_message,
    message_prompt_id,
    parse_ws_message,
)
from comfygraph.domain.backoff import backoff

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Reconnected:
    """Marker: the socket dropped and is back; what was sent meanwhile is lost.

    Catch up from /history and /queue. ``attempts`` counts failed connection
    attempts before this success, ``downtime`` the seconds without a socket.
    """

    attempts: int
    downtime: float


@dataclass(frozen=True, slots=True)
class Lagged:
    """Marker: this consumer fell behind and ``dropped`` messages were discarded."""

    dropped: int


StreamItem = WsMessage | Reconnected | Lagged


class InboxClosed(Exception):
    """The hub shut down; no more items will arrive."""


class Inbox:
    """A bounded FIFO of stream items; when full, the oldest item is dropped."""

    def __init__(self, limit: int):
        self._items: deque[StreamItem] = deque()
        self._limit = limit
        self._dropped = 0
        self._closed = False
        self._wakeup = asyncio.Event()

    def push(self, item: StreamItem) -> None:
        if self._closed:
            return
        if len(self._items) >= self._limit:
            self._items.popleft()
            self._dropped += 1
        self._items.append(item)
        self._wakeup.set()

    def close(self) -> None:
        self._closed = True
        self._wakeup.set()

    async def get(self, within: float | None = None) -> StreamItem | None:
        """The next item; None if ``within`` seconds pass first; InboxClosed when closed."""
        if not self._items and not self._closed:
            self._wakeup.clear()
            try:
                async with asyncio.timeout(within):
                    await self._wakeup.wait()
            except TimeoutError:
                return None
        if self._dropped:
            dropped, self._dropped = self._dropped, 0
            return Lagged(dropped)
        if self._items:
            return self._items.popleft()
        raise InboxClosed


class EventHub:
    """Owns the websocket of one client id and fans its messages out.

    :meth:`start` opens the socket (raising :class:`WorkerUnavailable` if the first
    attempt fails); afterwards a background task keeps it open, reconnecting with
    exponential backoff and jitter, and emits :class:`Reconnected` after each gap.
    :meth:`aclose` cancels and awaits that task.
    """

    ORPHAN_PROMPTS = 64  # prompt ids whose early events are kept
    ORPHAN_MESSAGES = 2000  # per prompt id

    def __init__(
        self,
        url: str,
        *,
        open_timeout: float,
        close_timeout: float,
        ping_interval: float | None,
        ping_timeout: float | None,
        max_size: int,
        reconnect_delay: tuple[float, float],
        first_frame: str | None = None,
    ):
        self.url = url
        self._open_timeout = open_timeout
        self._close_timeout = close_timeout
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._max_size = max_size
        self._delay_min, self._delay_max = reconnect_delay
        self._first_frame = first_frame
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[None] | None = None
        self._closed = False
        self._subscribers: set[Inbox] = set()
        self._trackers: dict[str, list[Inbox]] = {}
        self._orphans: OrderedDict[str, list[StreamItem]] = OrderedDict()
        self._running_prompt: str | None = None
        self.connected = False
        self.sid: str | None = None

    # -- lifecycle ----------------------------------------------------------

    async def start(self) -> None:
        """Open the socket if it is not open yet; WorkerUnavailable if that fails."""
        if self._closed:
            raise ComfyError("the ComfyUI client is closed")
        if self._task is None or self._task.done():
            self._ready = asyncio.get_running_loop().create_future()
            self._task = asyncio.create_task(self._run(self._ready), name=f"comfy-ws {self.url}")
        assert self._ready is not None
        try:
            await asyncio.shield(self._ready)
        except ComfyError:
            task, self._task = self._task, None
            if task is not None:
                await asyncio.gather(task, return_exceptions=True)
            raise

    async def aclose(self) -> None:
        """Close the socket, stop reconnecting, and end every subscription."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._ready is not None and not self._ready.done():
            self._ready.cancel()
        for inbox in self._all_inboxes():
            inbox.close()
        self._subscribers.clear()
        self._trackers.clear()
        self._orphans.clear()

    # -- consumers ----------------------------------------------------------

    def subscribe(self, limit: int) -> Inbox:
        inbox = Inbox(limit)
        self._subscribers.add(inbox)
        return inbox

    def unsubscribe(self, inbox: Inbox) -> None:
        self._subscribers.discard(inbox)
        inbox.close()

    def track(self, prompt_id: str, limit: int = 10_000) -> Inbox:
        """Receive the messages of one prompt, starting with any that came early."""
        inbox = Inbox(limit)
        for item in self._orphans.pop(prompt_id, []):
            inbox.push(item)
        self._trackers.setdefault(prompt_id, []).append(inbox)
        return inbox

    def untrack(self, prompt_id: str, inbox: Inbox) -> None:
        inboxes = self._trackers.get(prompt_id, [])
        if inbox in inboxes:
            inboxes.remove(inbox)
        if not inboxes:
            self._trackers.pop(prompt_id, None)
        inbox.close()

    # -- the connection task ------------------------------------------------

    async def _run(self, ready: asyncio.Future[None]) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        lost_at: float | None = None
        while True:
            try:
                ws = await connect(
                    self.url,
                    # No permessage-deflate: previews are JPEG/PNG that do not shrink and
                    # the JSON is small, so compression only spends CPU on both ends
                    # (ComfyUI's aiohttp compresses whatever the client accepts).
                    compression=None,
                    open_timeout=self._open_timeout,
                    close_timeout=self._close_timeout,
                    ping_interval=self._ping_interval,
                    ping_timeout=self._ping_timeout,
                    max_size=self._max_size,
                )
            except Exception as exc:  # OSError, TimeoutError, handshake errors, ...
                if not ready.done():
                    ready.set_exception(_translate_connect_error(self.url, exc))
                    return
                failures += 1
                log.info(
                    "comfy websocket %s: reconnect attempt %d failed: %s", self.url, failures, exc
                )
                await asyncio.sleep(self._backoff(failures + 1))
                continue
            try:
                if self._first_frame is not None:
                    # If the server already closed, still read what it sent before that.
                    with contextlib.suppress(ConnectionClosed):
                        await ws.send(self._first_frame)
                self.connected = True
                if not ready.done():
                    ready.set_result(None)
                elif lost_at is not None:
                    self._broadcast(Reconnected(failures, loop.time() - lost_at))
                failures = 0
                await self._pump(ws)
            except (OSError, TimeoutError, EOFError, WebSocketException) as exc:
                log.info("comfy websocket %s dropped: %s", self.url, exc)
            except Exception:
                # A bug here must not leave every stream and job without a socket.
                log.exception("comfy websocket %s: unexpected error; reconnecting", self.url)
            finally:
                self.connected = False
                with contextlib.suppress(Exception):
                    await ws.close()
            lost_at = loop.time()
            await asyncio.sleep(self._backoff(1))

    async def _pump(self, ws: ClientConnection) -> None:
        while True:
            try:
                frame = await ws.recv()
            except ConnectionClosed as exc:
                log.info("comfy websocket %s closed: %s", self.url, exc)
                return
            self._dispatch(frame)

    def _backoff(self, attempt: int) -> float:
        return backoff(attempt, self._delay_min, self._delay_max)

    # -- routing ------------------------------------------------------------

    def _dispatch(self, frame: str | bytes) -> None:
        try:
            message = parse_ws_message(frame)
        except ProtocolError as exc:
            log.warning("comfy websocket %s: skipping malformed frame: %s", self.url, exc)
            return
        self._route(message)

    def _route(self, message: WsMessage) -> None:
        prompt_id = self._attribute(message)
        for inbox in self._subscribers:
            inbox.push(message)
        if prompt_id is None:
            return
        trackers = self._trackers.get(prompt_id)
        if trackers:
            for tracker in trackers:
                tracker.push(message)
            return
        early = self._orphans.get(prompt_id)
        if early is None:
            early = self._orphans[prompt_id] = []
            while len(self._orphans) > self.ORPHAN_PROMPTS:
                self._orphans.popitem(last=False)
        if len(early) < self.ORPHAN_MESSAGES:
            early.append(message)

    def _attribute(self, message: WsMessage) -> str | None:
        """The prompt a message belongs to; also tracks which of ours is running.

        ``executing`` is sent only to the prompt's own client, so it tells which of
        our prompts runs; binary frames and the prompt_id-less ``executing`` sent
        after a reconnect are attributed to that prompt (ComfyUI runs one at a time).
        """
        prompt_id = message_prompt_id(message)
        if is_json_message(message):
            if message["type"] == "status":
                self.sid = message["data"].get("sid", self.sid)
            elif message["type"] == "executing":
                node = message["data"]["node"]
                if prompt_id is None:
                    return self._running_prompt if node is not None else None
                if node is not None:
                    self._running_prompt = prompt_id
                elif self._running_prompt == prompt_id:
                    self._running_prompt = None
            return prompt_id
        if prompt_id is None and isinstance(message, PreviewImage | ProgressText):
            return self._running_prompt
        return prompt_id

    def _broadcast(self, item: StreamItem) -> None:
        for inbox in self._all_inboxes():
            inbox.push(item)

    def _all_inboxes(self) -> list[Inbox]:
        return [*self._subscribers, *(i for group in self._trackers.values() for i in group)]


def _translate_connect_error(url: str, exc: BaseException) -> ComfyError:
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        if status < 500:
            return ProtocolError(
                f"websocket handshake with {url} refused with HTTP {status}",
                url=url,
                status_code=status,
            )
        return WorkerUnavailable(
            f"websocket handshake with {url} failed with HTTP {status}", url=url, status_code=status
        )
    if isinstance(exc, TimeoutError):
        return WorkerUnavailable(f"websocket {url}: connection timed out", url=url, reached=False)
    return WorkerUnavailable(
        f"websocket {url}: cannot connect: {exc}", url=url, reached=not isinstance(exc, OSError)
    )
