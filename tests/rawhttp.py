"""A load generator's HTTP client: keep-alive HTTP/1.1 connections over asyncio streams,
in a bounded pool per base URL, as a browser or a service keeps them.

Hand-rolled on purpose, for the benches and drills that send hundreds of requests a
second: httpx costs the sending process more CPU per request than the server spends, and
on a small machine the client then is what gets measured (its pool queues the load and
its timeouts read as refusals). It speaks just what comfygraph and nginx answer:
Content-Length or chunked bodies on a kept-alive connection.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

#: what a request may raise when the connection fails (the caller counts it by name)
ERRORS = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError)


class KeepAlive:
    """One connection, opened on first use and again after a failure."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        """(status, body). Raises one of ERRORS when the connection fails (it is then
        closed, and the next request opens a new one). A kept-alive connection the server
        closed meanwhile (its idle timeout) is replaced, as browsers and httpx do: when
        that is only seen on sending (no byte of an answer came), once, on a new one."""
        if self.streams is not None and (self.streams[0].at_eof() or self.streams[1].is_closing()):
            self.close()
        while True:  # at most twice: after a failure the connection is a new one
            reused = self.streams is not None
            try:
                return await self._exchange(method, path, body, headers)
            except _Unanswered as exc:
                if not reused:
                    raise exc.cause from None

    async def _exchange(
        self, method: str, path: str, body: bytes, headers: dict[str, str] | None
    ) -> tuple[int, bytes]:
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.streams
        lines = [f"{method} {path} HTTP/1.1", f"host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        lines.append(f"content-length: {len(body)}")
        try:
            try:
                writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
                raw = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                if isinstance(exc, asyncio.IncompleteReadError) and exc.partial:
                    raise
                raise _Unanswered(exc) from exc
            head = raw.decode("latin-1").split("\r\n")
            status = int(head[0].split()[1])
            fields = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                fields[name.strip().lower()] = value.strip()
            if "chunked" in fields.get("transfer-encoding", ""):
                answer = await _chunked(reader)
            else:
                answer = await reader.readexactly(int(fields.get("content-length", "0")))
            if fields.get("connection", "").lower() == "close":
                self.close()
            return status, answer
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


class _Unanswered(Exception):
    """The connection failed before any byte of an answer: on a reused connection, the
    server had closed it (idle) and never saw the request."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")  # no trailers are sent to us
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


class Pool:
    """At most `size` connections to one base URL; a request waits for a free one."""

    def __init__(self, url: str, size: int = 32) -> None:
        self.url = url
        # Last in, first out: the connections in use stay warm, the rest may expire.
        self.idle: asyncio.Queue[KeepAlive] = asyncio.LifoQueue()
        for _ in range(size):
            self.idle.put_nowait(KeepAlive(url))
        self.size = size

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        conn = await self.idle.get()
        try:
            return await conn.request(method, path, body, headers)
        finally:
            self.idle.put_nowait(conn)

    async def post_json(
        self, path: str, payload: Any, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        body = json.dumps(payload).encode()
        return await self.request(
            "POST", path, body, {"content-type": "application/json", **(headers or {})}
        )

    def close(self) -> None:
        while not self.idle.empty():
            self.idle.get_nowait().close()
