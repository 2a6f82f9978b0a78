"""Replay a recorded ComfyUI trace as a real server (Starlette under uvicorn).

The traces (tests/data/comfy/traces/comfyui-0.8.0/*.jsonl) hold every HTTP
exchange and every websocket message of a real ComfyUI 0.8.0. :class:`Replay`
answers HTTP requests with the recorded responses and plays the recorded
websocket messages to the connected socket in the recorded order.

Ordering: a recorded message that came after the client *sent* a POST is held
until the client sends the matching POST (so events follow the submit or the
interrupt that caused them), and a POST reply is held until the messages that
came before it in the recording have been sent (so ``status`` frames that beat
the reply still do). GET requests never move the script on.

Ids: the trace's client id and prompt ids are rewritten to the ones the client
uses, in both directions. Faults: ``race`` sends all of a prompt's events before
answering its POST (optionally holding the reply until ``hold_post`` is set);
``drop_after`` closes the socket after a matching message, the run continuing
unseen (so /history has the result on reconnect); ``mute_after`` keeps the socket
open but stops sending; ``pause_after`` holds the script after a matching message
until ``resume`` is set; ``inject`` slips extra frames (other clients' messages,
previews) in after matching messages; ``free_run`` ignores the POST gates.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from comfygraph.comfy.messages import ProgressText, encode_binary
from tests.servers import serve_in_thread

TRACES = Path(__file__).resolve().parents[1] / "data" / "comfy" / "traces" / "comfyui-0.8.0"

Payload = dict[str, Any] | bytes
Predicate = Callable[[Payload], bool]
HTTP_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH"]


@dataclass
class HttpRecord:
    index: int
    t_sent: float
    t: float
    request: dict[str, Any]
    response: dict[str, Any]

    @property
    def method(self) -> str:
        return str(self.request["method"])

    @property
    def path(self) -> str:
        return str(self.request["path"])


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    params: dict[str, str]
    body: Any
    form: dict[str, str]


@dataclass
class WsRecord:
    t: float
    payload: Payload
    gate: int = -1  # index of the POST that must have been received first; -1: none


@dataclass
class Trace:
    name: str
    http: list[HttpRecord] = field(default_factory=list)
    scripts: dict[str, list[WsRecord]] = field(default_factory=dict)  # by recorded socket
    client_ids: dict[str, str] = field(default_factory=dict)  # socket name -> clientId
    notes: list[str] = field(default_factory=list)

    @property
    def posts(self) -> list[HttpRecord]:
        return [r for r in self.http if r.method == "POST"]

    def prompts(self) -> list[dict[str, Any]]:
        """The graphs of the recorded POST /prompt requests, in order."""
        return [
            r.request["json"]["prompt"]
            for r in self.posts
            if r.path == "/prompt" and isinstance(r.request.get("json"), dict)
        ]

    def prompt_record(self, graph: Any) -> HttpRecord:
        return next(
            r
            for r in self.posts
            if r.path == "/prompt" and r.request.get("json", {}).get("prompt") == graph
        )

    def messages(self, socket: str | None = None) -> list[Payload]:
        return [w.payload for w in self.scripts[socket or next(iter(self.scripts))]]


def load_trace(name: str, directory: Path = TRACES) -> Trace:
    """Load ``<name>*.jsonl`` (e.g. ``"01"``) from the trace directory."""
    (path,) = sorted(directory.glob(f"{name}*.jsonl"))
    trace = Trace(path.stem)
    for line in path.read_text().splitlines():
        record = json.loads(line)
        kind = record["kind"]
        if kind == "http":
            trace.http.append(
                HttpRecord(
                    len(trace.http),
                    record["t_sent"],
                    record["t"],
                    record["request"],
                    record["response"],
                )
            )
        elif kind == "ws_open":
            query = parse_qs(urlsplit(record["url"]).query)
            trace.scripts.setdefault(record["ws"], [])
            if "clientId" in query:
                trace.client_ids[record["ws"]] = query["clientId"][0]
        elif kind == "ws_recv":
            trace.scripts.setdefault(record["ws"], []).append(
                WsRecord(record["t"], _payload(record))
            )
        elif kind == "note":
            trace.notes.append(record["note"])
    trace.scripts = trace.scripts or {"main": []}  # an HTTP-only trace still gets a socket
    posts = trace.posts
    for script in trace.scripts.values():
        for message in script:
            earlier = [i for i, post in enumerate(posts) if post.t_sent < message.t]
            message.gate = earlier[-1] if earlier else -1
    return trace


def _payload(record: dict[str, Any]) -> Payload:
    if not record.get("binary"):
        return dict(record["data"])
    if record.get("event_type") == 3 and "decoded" in record:
        decoded = record["decoded"]
        return encode_binary(ProgressText(decoded["node_id"], decoded["text"]))
    head = bytes.fromhex(record["first_8_bytes_hex"])  # the traces keep only a summary
    return head + bytes(max(0, record["len"] - len(head)))


def terminal_prompt(payload: Payload) -> str | None:
    """The prompt a message ends (``executing`` null), if it is such a message."""
    if isinstance(payload, dict) and payload.get("type") == "executing":
        data = payload.get("data") or {}
        if data.get("node") is None and isinstance(data.get("prompt_id"), str):
            return str(data["prompt_id"])
    return None


class Replay:
    """The ASGI app (``replay.app``) replaying one :class:`Trace`.

    ``sockets`` lists the recorded sockets to play to the 1st, 2nd, ... websocket
    connection (default: the first recorded one); a connection beyond the list gets
    a fresh ``status`` and continues the last script where it stopped.
    """

    def __init__(
        self,
        trace: Trace,
        *,
        sockets: Sequence[str] | None = None,
        race: bool = False,
        hold_post: threading.Event | None = None,
        drop_after: Predicate | None = None,
        mute_after: Predicate | None = None,
        pause_after: Predicate | None = None,
        resume: threading.Event | None = None,
        inject: Sequence[tuple[Predicate, Payload]] = (),
        free_run: bool = False,
    ):
        self.trace = trace
        self.sockets = list(sockets or [next(iter(trace.scripts))])
        self.race = race
        self.hold_post = hold_post
        self.drop_after = drop_after
        self.mute_after = mute_after
        self.pause_after = pause_after
        self.resume = resume
        self.inject = list(inject)
        self.free_run = free_run
        self.cursor = dict.fromkeys(trace.scripts, 0)
        self.ids: dict[str, str] = {}  # recorded id -> the client's
        self.posts_seen = -1
        self.used: set[int] = set()
        self.finished: set[str] = set()  # recorded prompt ids whose run is over
        self.submitted: list[str] = []  # recorded prompt ids, in POST order
        self.muted = False
        self.connections = 0
        self.active: str | None = None  # script of the open connection
        # For assertions (read them once the client is done):
        self.requests: list[SeenRequest] = []
        self.unmatched: list[tuple[str, str]] = []
        self.client_frames: list[str | bytes] = []
        self.connected_ids: list[str | None] = []
        self._cond: asyncio.Condition | None = None
        self.app = Starlette(
            routes=[
                WebSocketRoute("/ws", self._websocket),
                WebSocketRoute("/api/ws", self._websocket),
                Route("/{path:path}", self._http, methods=HTTP_METHODS),
            ]
        )

    # -- script state -----------------------------------------------------------

    @property
    def cond(self) -> asyncio.Condition:
        if self._cond is None:
            self._cond = asyncio.Condition()
        return self._cond

    def _pending(self, script: str) -> WsRecord | None:
        messages = self.trace.scripts[script]
        index = self.cursor[script]
        return messages[index] if index < len(messages) else None

    def _releasable(self, script: str) -> bool:
        message = self._pending(script)
        return message is not None and (self.free_run or message.gate <= self.posts_seen)

    def _advance(self, script: str) -> WsRecord:
        message = self.trace.scripts[script][self.cursor[script]]
        self.cursor[script] += 1
        pid = terminal_prompt(message.payload)
        if pid is not None:
            self.finished.add(pid)
        return message

    def _consume_released(self, script: str) -> None:
        while self._releasable(script):
            self._advance(script)

    # -- id rewriting -----------------------------------------------------------

    def _out(self, value: Any) -> Any:
        return _rewrite(value, self.ids)

    def _in(self, value: Any) -> Any:
        return _rewrite(value, {mine: theirs for theirs, mine in self.ids.items()})

    def _in_path(self, path: str) -> str:
        for theirs, mine in self.ids.items():
            path = path.replace(mine, theirs)
        return path

    # -- websocket --------------------------------------------------------------

    async def _websocket(self, websocket: WebSocket) -> None:
        await websocket.accept()
        client_id = websocket.query_params.get("clientId")
        self.connected_ids.append(client_id)
        number, self.connections = self.connections, self.connections + 1
        if client_id:
            for recorded in self.trace.client_ids.values():
                self.ids[recorded] = client_id
        closed = asyncio.Event()
        reader = asyncio.create_task(self._read_client(websocket, closed))
        try:
            if number < len(self.sockets):
                script = self.sockets[number]
            else:
                script = self.sockets[-1]
                status = {"status": {"exec_info": {"queue_remaining": 0}}, "sid": client_id}
                await websocket.send_json({"type": "status", "data": status})
            self.active = script
            await self._play(websocket, script, closed)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            if self.active is not None and self.connections == number + 1:
                self.active = None

    async def _read_client(self, websocket: WebSocket, closed: asyncio.Event) -> None:
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                frame = message.get("text")
                self.client_frames.append(
                    frame if frame is not None else message.get("bytes") or b""
                )
        finally:
            closed.set()
            async with self.cond:
                self.cond.notify_all()

    async def _play(self, websocket: WebSocket, script: str, closed: asyncio.Event) -> None:
        while True:
            async with self.cond:
                await self.cond.wait_for(lambda: closed.is_set() or self._releasable(script))
                if closed.is_set():
                    return
                message = self._advance(script)
                self.cond.notify_all()
            if self.muted:
                continue
            await _send(websocket, self._out(message.payload))
            if self.inject and self.inject[0][0](message.payload):
                await _send(websocket, self.inject.pop(0)[1])
            if self.pause_after is not None and self.pause_after(message.payload):
                self.pause_after = None
                assert self.resume is not None
                await asyncio.to_thread(self.resume.wait, 10)
            if self.mute_after is not None and self.mute_after(message.payload):
                self.muted = True
                async with self.cond:
                    self._consume_released(script)
                    self.cond.notify_all()
            if self.drop_after is not None and self.drop_after(message.payload):
                self.drop_after = None
                async with self.cond:
                    self._consume_released(script)
                    self.cond.notify_all()
                await websocket.close(code=1011)
                return

    # -- HTTP -------------------------------------------------------------------

    async def _http(self, request: Request) -> Response:
        path = request.url.path
        body, form, files = await _read_body(request)
        self.requests.append(
            SeenRequest(request.method, path, dict(request.query_params), body, form)
        )
        params = {k: v for k, v in request.query_params.items() if v != ""}
        path_in = self._in_path(path)
        if request.method == "GET" and path_in.startswith("/history/"):
            pid = path_in.removeprefix("/history/")
            if pid not in self.finished:
                return JSONResponse({})
        record = self._match(request.method, path_in, self._in(params), self._in(body), form, files)
        if record is None:
            synthesized = self._synthesize(request.method, path_in)
            if synthesized is None:
                self.unmatched.append((request.method, path))
                return Response("not in the trace", status_code=404)
            return synthesized
        if record.method == "POST":
            await self._on_post(record, body)
        return self._response(record)

    def _match(
        self,
        method: str,
        path: str,
        params: dict[str, Any],
        body: Any,
        form: dict[str, str],
        files: list[str],
    ) -> HttpRecord | None:
        candidates = []
        for record in self.trace.http:
            wanted = record.request
            if record.method != method or record.path != path:
                continue
            if (
                method == "GET"
                and {k: v for k, v in wanted.get("params", {}).items() if v != ""} != params
            ):
                continue
            if path == "/prompt" and method == "POST":
                if not isinstance(body, dict) or wanted.get("json", {}).get("prompt") != body.get(
                    "prompt"
                ):
                    continue
            elif method == "POST" and "files" in wanted:
                if _form(wanted.get("form", {})) != _form(form) or list(wanted["files"]) != files:
                    continue
            elif method == "POST" and wanted.get("json") != body:
                continue
            candidates.append(record)
        fresh = [r for r in candidates if r.index not in self.used]
        if fresh:
            self.used.add(fresh[0].index)
            return fresh[0]
        return candidates[-1] if candidates and method == "GET" else None

    async def _on_post(self, record: HttpRecord, body: Any) -> None:
        recorded = record.response.get("json")
        if record.path == "/prompt" and isinstance(recorded, dict) and "prompt_id" in recorded:
            theirs = recorded["prompt_id"]
            mine = body.get("prompt_id") if isinstance(body, dict) else None
            self.ids[theirs] = mine or theirs
            self.submitted.append(theirs)
        rank = self.trace.posts.index(record)
        async with self.cond:
            self.posts_seen = max(self.posts_seen, rank)
            self.cond.notify_all()
            script = self.active
            if script is None:
                return

            def caught_up() -> bool:
                pending = self._pending(script)
                if pending is None or not self._releasable(script) or self.active != script:
                    return True
                return not self.race and pending.t >= record.t

            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await self.cond.wait_for(caught_up)
        if self.race and record.path == "/prompt" and self.hold_post is not None:
            await asyncio.to_thread(self.hold_post.wait, 10)

    def _response(self, record: HttpRecord) -> Response:
        recorded = record.response
        status = recorded["status"]
        headers = recorded.get("headers", {})
        if "json" in recorded:
            return JSONResponse(self._out(recorded["json"]), status_code=status)
        if recorded.get("binary"):
            head = bytes.fromhex(recorded["first_8_bytes_hex"])
            content = head + bytes(max(0, recorded["len"] - len(head)))
            return Response(content, status_code=status, media_type=headers.get("content-type"))
        return Response(
            recorded.get("text", ""), status_code=status, media_type=headers.get("content-type")
        )

    def _synthesize(self, method: str, path: str) -> Response | None:
        """Answers for polling requests the recording did not make at that moment."""
        if method == "GET" and path.startswith("/history/"):
            pid = path.removeprefix("/history/")
            entry = self._history_from_messages(pid) if pid in self.finished else None
            return JSONResponse(self._out({pid: entry} if entry else {}))
        open_ = [pid for pid in self.submitted if pid not in self.finished]
        if method == "GET" and path in ("/queue", "/api/queue"):
            items = [[n, self.ids.get(pid, pid), {}, {}, []] for n, pid in enumerate(open_)]
            return JSONResponse({"queue_running": items[:1], "queue_pending": items[1:]})
        if method == "GET" and path in ("/prompt", "/api/prompt"):
            return JSONResponse({"exec_info": {"queue_remaining": len(open_)}})
        return None

    def _history_from_messages(self, pid: str) -> dict[str, Any] | None:
        """A /history entry rebuilt from the run's messages, for traces that fetched none."""
        outputs: dict[str, Any] = {}
        messages: list[list[Any]] = []
        status = "success"
        for script in self.trace.scripts.values():
            for record in script:
                payload = record.payload
                if not isinstance(payload, dict) or payload["data"].get("prompt_id") != pid:
                    continue
                kind, data = payload["type"], payload["data"]
                if kind == "executed" and data.get("output"):
                    outputs[data["node"]] = data["output"]
                elif kind in ("execution_start", "execution_cached", "execution_success"):
                    messages.append([kind, data])
                elif kind in ("execution_error", "execution_interrupted"):
                    messages.append([kind, data])
                    status = "error"
        if not messages:
            return None
        return {
            "prompt": [0, pid, {}, {}, list(outputs)],
            "outputs": outputs,
            "status": {
                "status_str": status,
                "completed": status == "success",
                "messages": messages,
            },
            "meta": {},
        }


async def _send(websocket: WebSocket, payload: Payload) -> None:
    if isinstance(payload, bytes):
        await websocket.send_bytes(payload)
    else:
        await websocket.send_text(json.dumps(payload))


async def _read_body(request: Request) -> tuple[Any, dict[str, str], list[str]]:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        files = [k for k, v in form.items() if not isinstance(v, str)]
        await form.close()
        return None, fields, files
    raw = await request.body()
    if not raw:
        return None, {}, []
    try:
        return json.loads(raw), {}, []
    except ValueError:
        return raw.decode(errors="replace"), {}, []


def _form(fields: dict[str, str]) -> dict[str, str]:
    """Upload form fields without the values that only restate ComfyUI's defaults."""
    defaults = {"type": "input", "subfolder": "", "overwrite": "false"}
    return {k: v for k, v in fields.items() if defaults.get(k) != v}


def _rewrite(value: Any, ids: dict[str, str]) -> Any:
    if not ids:
        return value
    if isinstance(value, str):
        return ids.get(value, value)
    if isinstance(value, list):
        return [_rewrite(v, ids) for v in value]
    if isinstance(value, dict):
        return {ids.get(k, k): _rewrite(v, ids) for k, v in value.items()}
    return value


@contextlib.contextmanager
def serve_replay(trace: Trace | str, **options: Any) -> Iterator[tuple[str, Replay]]:
    """Run a :class:`Replay` under uvicorn; yields (base_url, replay)."""
    replay = Replay(load_trace(trace) if isinstance(trace, str) else trace, **options)
    with serve_in_thread(replay.app) as url:
        yield url, replay


def executing(node: str | None) -> Predicate:
    """Matches the ``executing`` message of ``node``."""
    return lambda p: isinstance(p, dict) and p["type"] == "executing" and p["data"]["node"] == node


def of_type(kind: str) -> Predicate:
    return lambda p: isinstance(p, dict) and p["type"] == kind


def always(_: Payload) -> bool:
    return True
