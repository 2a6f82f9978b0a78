"""A TCP proxy that can freeze its open connections: a half-open link, made for real.

After ``freeze()`` the bytes of the connections open at that moment go nowhere in either
direction, yet nothing is closed: neither side sees EOF, as when a NAT or a firewall
forgets a flow. Connections opened later pass normally. While ``refusing`` is set, new
connections are closed at once (the server looks down).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs, urlsplit

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class _Flow:
    def __init__(self) -> None:
        self.frozen = False
        self.writers: list[asyncio.StreamWriter] = []


class FreezingProxy:
    def __init__(self, open_upstream: Callable[[], Awaitable[Streams]]) -> None:
        self._open_upstream = open_upstream
        self._server: asyncio.Server | None = None
        self._flows: list[_Flow] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0
        self.refusing = False
        self.refused = asyncio.Event()  # set once a connection was refused

    async def __aenter__(self) -> FreezingProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for flow in self._flows:
            for writer in flow.writers:
                writer.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)
        await self._server.wait_closed()

    def freeze(self) -> int:
        """Freeze every connection open now; how many."""
        live = [flow for flow in self._flows if not flow.frozen]
        for flow in live:
            flow.frozen = True
        return len(live)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.close()
            self.refused.set()
            return
        flow = _Flow()
        try:
            up_reader, up_writer = await self._open_upstream()
        except OSError:
            writer.close()
            return
        flow.writers += [writer, up_writer]
        self._flows.append(flow)
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(flow, src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _pipe(flow: _Flow, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await src.read(65536):
                if not flow.frozen:
                    dst.write(data)
                    await dst.drain()
        if not flow.frozen:
            dst.close()


def pg_upstream(dsn: str) -> Callable[[], Awaitable[Streams]]:
    parts = urlsplit(dsn)
    query = parse_qs(parts.query)
    host = parts.hostname or query.get("host", ["localhost"])[0]
    port = parts.port or int(query.get("port", ["5432"])[0])
    if host.startswith("/"):
        return lambda: asyncio.open_unix_connection(f"{host}/.s.PGSQL.{port}")
    return lambda: asyncio.open_connection(host, port)


def pg_through(dsn: str, proxy_port: int) -> str:
    parts = urlsplit(dsn)
    auth = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return f"postgresql://{auth}127.0.0.1:{proxy_port}{parts.path}?sslmode=disable"


def redis_upstream(url: str) -> Callable[[], Awaitable[Streams]]:
    parts = urlsplit(url)
    return lambda: asyncio.open_connection(parts.hostname or "127.0.0.1", parts.port or 6379)


def redis_through(url: str, proxy_port: int) -> str:
    parts = urlsplit(url)
    auth = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return parts._replace(netloc=f"{auth}127.0.0.1:{proxy_port}").geturl()
