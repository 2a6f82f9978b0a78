"""A webhook receiver on a real loopback port, served by uvicorn inside the test's own
event loop, so that tests wait on its asyncio events instead of polling."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import uvicorn
from starlette.requests import Request
from starlette.responses import Response


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.time()


@dataclass
class Receiver:
    """Records every POST; `answer(received, n)` picks the status code of the n-th
    request (from 0) to its path (default 200)."""

    answer: Callable[[Received, int], int | tuple[int, dict[str, str], bytes]] = lambda r, n: 200
    requests: list[Received] = field(default_factory=list)
    url: str = ""
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _per_path: dict[str, int] = field(default_factory=dict)

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        body = await request.body()
        got = Received(scope["path"], dict(request.headers), body, time.time())
        n = self._per_path.get(got.path, 0)
        self._per_path[got.path] = n + 1
        reply = self.answer(got, n)
        status, headers, content = reply if isinstance(reply, tuple) else (reply, {}, b"ok")
        async with self._changed:
            self.requests.append(got)
            self._changed.notify_all()
        await Response(content, status_code=status, headers=headers)(scope, receive, send)

    def at(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]

    async def wait_for(self, check: Callable[[], bool], within: float = 20.0) -> None:
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(check)


@contextlib.asynccontextmanager
async def serve_receiver(receiver: Receiver) -> AsyncIterator[Receiver]:
    # Our own listening socket: connections queue on it before uvicorn runs, so there is
    # no start-up to wait for.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(receiver, log_level="warning", lifespan="off", backlog=1024)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    receiver.url = f"http://127.0.0.1:{port}"
    try:
        yield receiver
    finally:
        server.should_exit = True
        await task
        sock.close()
