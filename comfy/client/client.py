"""Async client of a ComfyUI worker: its HTTP routes, its websocket, and whole runs.

Written against the real server (docs/comfyui-protocol.md; traces of ComfyUI 0.8.0). Every
network call carries a timeout, and failures surface as :mod:`comfy.errors` types.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import mimetypes
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx

from comfygraph.comfy.errors import (
    ComfyError,
    JobTimeout,
    OutputMissing,
    PromptRejected,
    ProtocolError,
    WorkerUnavailable,
)
from comfygraph.comfy.messages import (
    Graph,
    HistoryEntry,
    NodeError,
    NodeInfo,
    Queue,
    SystemStats,
    parse_queue,
)

from .job import Job, JobEvent, PromptResult, drain
from .stream import EventHub, Inbox, InboxClosed, StreamItem

FILE_TYPES = ("output", "input", "temp")


def new_prompt_id() -> str:
    """A canonical lowercase uuid4: the only prompt_id form every ComfyUI accepts."""
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """POST /prompt accepted the graph.

    ``number`` is a priority value, not a queue position. A non-empty
    ``node_errors`` means some output nodes failed validation and were dropped
    while the others were queued.
    """

    prompt_id: str
    number: float
    node_errors: dict[str, NodeError] = field(default_factory=dict)


class EventStream:
    """``async for`` over every message of the client's socket, plus gap markers.

    Yields parsed messages (:data:`comfy.messages.WsMessage`), :class:`Reconnected`
    after the socket came back, and :class:`Lagged` if this consumer fell behind
    by more than its buffer. Other clients' broadcasts are included: filter by
    prompt_id. Ends when the client is closed.
    """

    def __init__(self, inbox: Inbox):
        self._inbox = inbox

    def __aiter__(self) -> AsyncIterator[StreamItem]:
        return self

    async def __anext__(self) -> StreamItem:
        try:
            item = await self._inbox.get()
        except InboxClosed:
            raise StopAsyncIteration from None
        assert item is not None  # no timeout given
        return item


class ComfyClient:
    """Client of one ComfyUI worker at ``base_url`` (e.g. ``http://gpu-3:8188``).

    Use it as ``async with ComfyClient(...) as client`` or call :meth:`aclose`: it
    owns the httpx client it creates (an injected ``http`` client stays the
    caller's) and the background task that keeps the websocket open.

    ``client_id`` names this client's websocket; ComfyUI sends a prompt's events
    only to the socket whose id matches the prompt's. Reuse the same id to get
    the live events of prompts submitted before a restart. ``timeout`` bounds one
    HTTP request, ``transfer_timeout`` a /view or upload body, ``connect_timeout``
    opening a TCP connection or the websocket. Jobs reconcile from /history and
    /queue after ``poll_interval`` seconds without news, and fail with
    WorkerUnavailable once the worker has been unreachable for ``unavailable_after``.
    """

    def __init__(
        self,
        base_url: str,
        *,
        client_id: str | None = None,
        http: httpx.AsyncClient | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        transfer_timeout: float = 300.0,
        poll_interval: float = 5.0,
        unavailable_after: float = 30.0,
        reconnect_delay: tuple[float, float] = (0.1, 10.0),
        ws_ping_interval: float | None = 20.0,
        ws_max_size: int = 64 * 2**20,
        preview_metadata: bool = True,
    ):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                f"ComfyUI base_url must be http(s)://host[:port][/prefix], not {base_url!r}"
            )
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id or uuid.uuid4().hex
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._transfer_timeout = httpx.Timeout(transfer_timeout, connect=connect_timeout)
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient(timeout=self._timeout)
        self._poll_interval = poll_interval
        self._unavailable_after = unavailable_after
        ws_scheme = "wss" if parts.scheme == "https" else "ws"
        ws_url = f"{ws_scheme}://{parts.netloc}{parts.path.rstrip('/')}/ws?" + urlencode(
            {"clientId": self.client_id}
        )
        first_frame = None
        if preview_metadata:
            # The one frame ComfyUI reads from clients: previews then carry their prompt_id.
            first_frame = json.dumps(
                {"type": "feature_flags", "data": {"supports_preview_metadata": True}}
            )
        self._hub = EventHub(
            ws_url,
            open_timeout=connect_timeout,
            close_timeout=connect_timeout,
            ping_interval=ws_ping_interval,
            ping_timeout=ws_ping_interval,
            max_size=ws_max_size,
            reconnect_delay=reconnect_delay,
            first_frame=first_frame,
        )

    async def __aenter__(self) -> ComfyClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the websocket (ending every stream and job) and the owned HTTP client."""
        await self._hub.aclose()
        if self._owns_http:
            await self._http.aclose()

    @property
    def connected(self) -> bool:
        """True while the websocket is open."""
        return self._hub.connected

    # -- prompts ----------------------------------------------------------------

    async def submit(
        self,
        graph: Graph,
        *,
        prompt_id: str | None = None,
        front: bool = False,
        extra_data: Mapping[str, Any] | None = None,
        partial_execution_targets: Iterable[str] | None = None,
    ) -> SubmitResult:
        """POST /prompt: queue an API-format ``graph`` for this client's socket.

        A fresh uuid4 prompt_id is sent when none is given, so the caller can record
        it before submitting. ``front`` jumps the queue. Raises PromptRejected when
        the graph fails validation (400; 409 for a duplicate prompt_id on newer
        servers); WorkerUnavailable when the worker is unreachable, times out or
        answers 5xx. After a timeout the prompt may have been queued anyway: use
        :meth:`watch` with the same prompt_id to find out (resubmitting the same id
        re-runs it on ComfyUI <= 0.8).
        """
        body: dict[str, Any] = {
            "prompt": graph,
            "client_id": self.client_id,
            "prompt_id": prompt_id or new_prompt_id(),
        }
        if front:
            body["front"] = True
        if extra_data is not None:
            body["extra_data"] = dict(extra_data)
        if partial_execution_targets is not None:
            body["partial_execution_targets"] = list(partial_execution_targets)
        response = await self._call("POST", "/prompt", json=body)
        if response.status_code in (400, 409):
            payload = _json_or_none(response)
            if not isinstance(payload, dict):
                payload = {}
            error = payload.get("error")
            if not isinstance(error, dict):  # 409 on newer servers: {"error": "<text>"}
                kind = "duplicate_prompt_id" if response.status_code == 409 else "rejected"
                error = {"type": kind, "message": str(error or response.text), "details": ""}
            node_errors = payload.get("node_errors")
            raise PromptRejected(
                error,
                node_errors if isinstance(node_errors, dict) else {},
                status_code=response.status_code,
            )
        payload = self._json(response, "POST /prompt")
        if not isinstance(payload, dict) or not isinstance(payload.get("prompt_id"), str):
            raise ProtocolError(f"POST /prompt answered without a prompt_id: {payload!r:.200}")
        node_errors = payload.get("node_errors")
        return SubmitResult(
            prompt_id=payload["prompt_id"],
            number=payload.get("number", 0),
            node_errors=node_errors if isinstance(node_errors, dict) else {},
        )

    async def history(self, prompt_id: str) -> HistoryEntry | None:
        """GET /history/{prompt_id}: the finished prompt's entry, or None.

        None means "not finished yet" as well as "unknown or evicted": ComfyUI
        answers ``{}`` for both; :meth:`queue` tells them apart. Raises
        WorkerUnavailable (unreachable/5xx) or ProtocolError (unexpected answer).
        """
        payload = await self._get_json(f"/history/{quote(prompt_id, safe='')}")
        if not isinstance(payload, dict):
            raise ProtocolError(f"GET /history/{prompt_id} did not answer an object")
        if not payload:
            return None
        entry = payload.get(prompt_id)
        if not isinstance(entry, dict) or not isinstance(entry.get("outputs", {}), dict):
            raise ProtocolError(f"GET /history/{prompt_id} answered no usable entry for it")
        return entry  # type: ignore[return-value]

    async def queue(self) -> Queue:
        """GET /queue: the running and pending prompts of every client.

        Pending items come back sorted into execution order (ComfyUI sends heap
        order). Raises WorkerUnavailable or ProtocolError.
        """
        return parse_queue(await self._get_json("/queue"))

    async def queue_remaining(self) -> int:
        """GET /prompt: pending plus running prompts, all clients counted."""
        payload = await self._get_json("/prompt")
        try:
            return int(payload["exec_info"]["queue_remaining"])
        except (TypeError, KeyError, ValueError) as exc:
            raise ProtocolError(f"GET /prompt answered {payload!r:.200}") from exc

    async def delete_from_queue(self, prompt_ids: Iterable[str]) -> None:
        """POST /queue {"delete": [...]}: drop pending prompts.

        Unknown ids and the running prompt are silently left alone (use
        :meth:`interrupt` or :meth:`cancel`). Raises WorkerUnavailable or ProtocolError.
        """
        await self._post_empty("/queue", {"delete": list(prompt_ids)})

    async def clear_queue(self) -> None:
        """POST /queue {"clear": true}: drop every pending prompt, every client's."""
        await self._post_empty("/queue", {"clear": True})

    async def interrupt(self, prompt_id: str | None = None) -> None:
        """POST /interrupt: stop the running prompt at the next node boundary.

        With ``prompt_id`` only that prompt is interrupted, and only if it is the one
        running now (otherwise a silent no-op). Without it, whatever runs is
        interrupted, even another client's prompt. Raises WorkerUnavailable or
        ProtocolError.
        """
        await self._post_empty("/interrupt", {"prompt_id": prompt_id} if prompt_id else None)

    async def cancel(self, prompt_id: str) -> None:
        """Cancel a prompt whether pending or running: dequeue it, then interrupt it.

        The delete-then-interrupt order also catches a prompt that starts between the
        two calls. Raises WorkerUnavailable or ProtocolError.
        """
        await self.delete_from_queue([prompt_id])
        await self.interrupt(prompt_id)

    # -- files --------------------------------------------------------------------

    def view_url(self, filename: str, subfolder: str = "", type: str = "output") -> str:
        """The GET /view URL of an output file (no network)."""
        _check_file_type(type)
        query = urlencode({"filename": filename, "subfolder": subfolder, "type": type})
        return f"{self.base_url}/view?{query}"

    async def view(self, filename: str, subfolder: str = "", type: str = "output") -> bytes:
        """GET /view: the bytes of an output, input or temp file.

        Raises OutputMissing (404: no such file; temp files vanish when the worker
        restarts), WorkerUnavailable, or ProtocolError (400/403: a name ComfyUI
        refuses, such as one escaping its folder).
        """
        _check_file_type(type)
        params = {"filename": filename, "subfolder": subfolder, "type": type}
        response = await self._call("GET", "/view", params=params, limits=self._transfer_timeout)
        _check_view_status(response.status_code, filename, response.text)
        return response.content

    @contextlib.asynccontextmanager
    async def view_stream(
        self, filename: str, subfolder: str = "", type: str = "output", *, chunk_size: int = 1 << 16
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """GET /view, streamed: ``async with client.view_stream(...) as chunks``.

        Same failures as :meth:`view`; a transfer that breaks midway raises
        WorkerUnavailable from the iteration.
        """
        _check_file_type(type)
        params = {"filename": filename, "subfolder": subfolder, "type": type}
        url = f"{self.base_url}/view"
        request = self._http.build_request(
            "GET", url, params=params, timeout=self._transfer_timeout
        )
        try:
            response = await self._http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise _translate_http_error("GET /view", url, exc) from exc
        try:
            if response.status_code >= 500:
                raise WorkerUnavailable(
                    f"GET /view answered HTTP {response.status_code}",
                    url=url,
                    status_code=response.status_code,
                )
            _check_view_status(response.status_code, filename, "")
            yield _chunks(response, url, chunk_size)
        finally:
            await response.aclose()

    async def download(
        self,
        filename: str,
        dest: str | os.PathLike[str],
        *,
        subfolder: str = "",
        type: str = "output",
    ) -> int:
        """Stream GET /view into ``dest`` (written whole or not at all); returns the size.

        Same failures as :meth:`view`.
        """
        target = Path(dest)
        partial = target.with_name(target.name + ".part")
        size = 0
        async with self.view_stream(filename, subfolder, type) as chunks:
            handle = await asyncio.to_thread(partial.open, "wb")
            try:
                async for chunk in chunks:
                    await asyncio.to_thread(handle.write, chunk)
                    size += len(chunk)
            except BaseException:
                await asyncio.to_thread(handle.close)
                await asyncio.to_thread(partial.unlink, True)
                raise
            await asyncio.to_thread(handle.close)
        await asyncio.to_thread(partial.replace, target)
        return size

    async def upload_image(
        self,
        data: bytes,
        filename: str,
        *,
        subfolder: str = "",
        overwrite: bool = False,
        type: str = "input",
    ) -> str:
        """POST /upload/image (multipart): store a file for LoadImage and friends.

        Returns the value to put in LoadImage's ``image`` input: the name ComfyUI
        stored the file under, which differs from ``filename`` when it renamed it to
        avoid a clash (``x (1).png``; identical bytes keep the old name), prefixed
        with ``subfolder/`` when a subfolder was given. ``overwrite`` replaces an
        existing file instead. Raises WorkerUnavailable or ProtocolError (400: the
        worker refused the upload, e.g. a subfolder escaping its folder).
        """
        _check_file_type(type)
        form = {"type": type}
        if subfolder:
            form["subfolder"] = subfolder
        if overwrite:
            form["overwrite"] = "true"
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        response = await self._call(
            "POST",
            "/upload/image",
            files={"image": (filename, data, content_type)},
            data=form,
            limits=self._transfer_timeout,
        )
        payload = self._json(response, "POST /upload/image")
        if not isinstance(payload, dict) or not isinstance(payload.get("name"), str):
            raise ProtocolError(f"POST /upload/image answered {payload!r:.200}")
        stored_subfolder = payload.get("subfolder") or ""
        return f"{stored_subfolder}/{payload['name']}" if stored_subfolder else payload["name"]

    # -- information ----------------------------------------------------------------

    async def system_stats(self) -> SystemStats:
        """GET /system_stats: versions, RAM and devices. Raises WorkerUnavailable or
        ProtocolError; a cheap liveness probe."""
        payload = await self._get_json("/system_stats")
        if not isinstance(payload, dict) or not isinstance(payload.get("system"), dict):
            raise ProtocolError("GET /system_stats answered no 'system' object")
        return payload  # type: ignore[return-value]

    async def object_info(self, class_type: str | None = None) -> dict[str, NodeInfo]:
        """GET /object_info[/{class_type}]: node definitions, keyed by class name.

        An unknown ``class_type`` gives ``{}``. The full list is large and slow to
        build on the worker; ask for one class when you can. Raises
        WorkerUnavailable or ProtocolError.
        """
        path = (
            "/object_info" if class_type is None else f"/object_info/{quote(class_type, safe='')}"
        )
        payload = await self._get_json(path, limits=self._transfer_timeout)
        if not isinstance(payload, dict):
            raise ProtocolError(f"GET {path} did not answer an object")
        return payload

    # -- websocket ------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def events(self, *, buffer: int = 10_000) -> AsyncIterator[EventStream]:
        """Subscribe to this client's websocket (/ws?clientId=...).

        Opens the socket if needed (WorkerUnavailable if it cannot be opened) and
        keeps it open, reconnecting with backoff; the stream yields
        :class:`Reconnected` after every gap so callers can catch up from /history.
        All subscribers and jobs of a client share one socket.
        """
        inbox = self._hub.subscribe(buffer)  # before connecting: the first status counts
        try:
            await self._hub.start()
            yield EventStream(inbox)
        finally:
            self._hub.unsubscribe(inbox)

    @contextlib.asynccontextmanager
    async def watch(
        self,
        prompt_id: str,
        *,
        timeout: float | None = None,
        stall_after: float | None = None,
    ) -> AsyncIterator[Job]:
        """Follow a prompt that was already submitted: ``async with client.watch(id) as job``.

        Iterate ``job`` for its events, then ``await job.wait()`` for the
        :class:`PromptResult`. A prompt the worker does not know (neither queued nor
        in history) raises PromptNotFound from ``wait()``. Events arrive only if the
        prompt was submitted with this client's ``client_id``; otherwise the job
        still finishes, from polling. Raises WorkerUnavailable if the socket cannot
        be opened.
        """
        async with self._job(
            prompt_id, timeout=timeout, submitted=True, stall_after=stall_after
        ) as job:
            yield job

    @contextlib.asynccontextmanager
    async def submit_and_watch(
        self,
        graph: Graph,
        *,
        prompt_id: str | None = None,
        front: bool = False,
        extra_data: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        stall_after: float | None = None,
    ) -> AsyncIterator[Job]:
        """Start following a prompt id, then POST /prompt it; yields the :class:`Job`.

        Following first means no event is missed even when ComfyUI sends them
        before answering the POST. Raises what :meth:`submit` raises; ``timeout``
        (seconds, from now) bounds the whole job.
        """
        prompt_id = prompt_id or new_prompt_id()
        async with self._job(
            prompt_id, timeout=timeout, submitted=False, stall_after=stall_after
        ) as job:
            job._accepted(
                await self.submit(graph, prompt_id=prompt_id, front=front, extra_data=extra_data)
            )
            yield job

    async def run_prompt(
        self,
        graph: Graph,
        *,
        prompt_id: str | None = None,
        front: bool = False,
        extra_data: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        on_event: Callable[[JobEvent], Awaitable[None] | None] | None = None,
        cancel_on_timeout: bool = True,
    ) -> PromptResult:
        """Submit ``graph`` and wait for it: returns the :class:`PromptResult`.

        ``on_event`` (sync or async) sees each of the prompt's messages as it comes.
        Raises PromptRejected, ExecutionFailed (a node raised), ExecutionInterrupted,
        PromptNotFound (the worker lost it), JobTimeout (after ``timeout`` seconds;
        the prompt is then cancelled unless ``cancel_on_timeout`` is false),
        OutputMissing, or WorkerUnavailable. Cancelling the calling task leaves the
        prompt queued or running on the worker (:meth:`watch` can pick it up again).
        """
        async with self.submit_and_watch(
            graph, prompt_id=prompt_id, front=front, extra_data=extra_data, timeout=timeout
        ) as job:
            await drain(job, on_event)
            try:
                return await job.wait()
            except JobTimeout:
                if cancel_on_timeout:
                    with contextlib.suppress(ComfyError):
                        await self.cancel(job.prompt_id)
                raise

    @contextlib.asynccontextmanager
    async def _job(
        self,
        prompt_id: str,
        *,
        timeout: float | None,
        submitted: bool,
        stall_after: float | None = None,
    ) -> AsyncIterator[Job]:
        inbox = self._hub.track(prompt_id)
        try:
            await self._hub.start()
            yield Job(
                self,
                inbox,
                prompt_id,
                timeout=timeout,
                poll_interval=self._poll_interval,
                unavailable_after=self._unavailable_after,
                submitted=submitted,
                stall_after=stall_after,
            )
        finally:
            self._hub.untrack(prompt_id, inbox)

    # -- HTTP plumbing --------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        limits: httpx.Timeout | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        url = self.base_url + path
        try:
            response = await self._http.request(
                method, url, timeout=limits or self._timeout, **kwargs
            )
        except httpx.HTTPError as exc:
            raise _translate_http_error(f"{method} {path}", url, exc) from exc
        if response.status_code >= 500:
            raise WorkerUnavailable(
                f"{method} {path} answered HTTP {response.status_code}: {response.text[:200]}",
                url=url,
                status_code=response.status_code,
            )
        return response

    async def _get_json(self, path: str, *, limits: httpx.Timeout | None = None) -> Any:
        return self._json(await self._call("GET", path, limits=limits), f"GET {path}")

    async def _post_empty(self, path: str, body: Any) -> None:
        response = await self._call("POST", path, json=body)
        if response.status_code != 200:
            raise ProtocolError(
                f"POST {path} answered HTTP {response.status_code}: {response.text[:200]}",
                url=self.base_url + path,
                status_code=response.status_code,
            )

    def _json(self, response: httpx.Response, what: str) -> Any:
        if response.status_code != 200:
            raise ProtocolError(
                f"{what} answered HTTP {response.status_code}: {response.text[:200]}",
                url=str(response.request.url),
                status_code=response.status_code,
            )
        try:
            return response.json()
        except ValueError as exc:
            raise ProtocolError(f"{what} answered a body that is not JSON") from exc


async def _chunks(response: httpx.Response, url: str, chunk_size: int) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.aiter_bytes(chunk_size):
            yield chunk
    except httpx.HTTPError as exc:
        raise _translate_http_error("GET /view", url, exc) from exc


def _translate_http_error(what: str, url: str, exc: httpx.HTTPError) -> ComfyError:
    # No connection, so the request was never sent (a read or write error may come
    # after the worker got it).
    reached = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
    if isinstance(exc, httpx.TimeoutException):
        return WorkerUnavailable(
            f"{what} timed out ({type(exc).__name__})", url=url, reached=reached
        )
    if isinstance(exc, httpx.TransportError):
        return WorkerUnavailable(
            f"{what} failed: {type(exc).__name__}: {exc}", url=url, reached=reached
        )
    return ProtocolError(f"{what} failed: {type(exc).__name__}: {exc}", url=url)


def _check_file_type(type: str) -> None:
    if type not in FILE_TYPES:
        raise ValueError(f"ComfyUI file type must be one of {FILE_TYPES}, not {type!r}")


def _check_view_status(status: int, filename: str, body: str) -> None:
    if status == 404:
        raise OutputMissing(f"GET /view: {filename!r} is not on the worker")
    if status != 200:
        raise ProtocolError(
            f"GET /view {filename!r} answered HTTP {status}: {body[:200]}", status_code=status
        )


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
