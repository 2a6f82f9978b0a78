"""A TCP proxy in front of PostgreSQL that counts the statements its clients run.

It reads the frontend protocol as it forwards it: every Execute ('E') message is one
statement of the extended protocol (asyncpg's fetch/execute with arguments), every
Query ('Q') one simple-protocol round trip (asyncpg's connection reset on release).
Nothing in the application is changed or wrapped: this is what reaches the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit, urlunsplit

_SSL_OR_GSS_REQUEST = (80877103, 80877104)


def _upstream(dsn: str) -> tuple[str | None, str, int]:
    """(unix socket path or None, host, port) of a libpq-style DSN."""
    parts = urlsplit(dsn)
    query = parse_qs(parts.query)
    host = parts.hostname or query.get("host", ["localhost"])[0]
    port = parts.port or int(query.get("port", ["5432"])[0])
    if host.startswith("/"):
        return f"{host}/.s.PGSQL.{port}", host, port
    return None, host, port


class StatementCounter:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._port = 0

    @property
    def statements(self) -> int:
        with self._lock:
            return self.counts["E"]

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.counts)

    @contextlib.contextmanager
    def running(self) -> Iterator[str]:
        """Yield a DSN that reaches the same database through the proxy."""
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        assert self._ready.wait(10), "proxy did not start"
        parts = urlsplit(self.dsn)
        auth = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        try:
            yield urlunsplit(("postgresql", f"{auth}127.0.0.1:{self._port}", parts.path,
                              "sslmode=disable", ""))  # fmt: skip
        finally:
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self._loop.stop)
            thread.join(10)

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self._port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            self._loop.close()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        socket_path, host, port = _upstream(self.dsn)
        if socket_path:
            server_r, server_w = await asyncio.open_unix_connection(socket_path)
        else:
            server_r, server_w = await asyncio.open_connection(host, port)
        tasks = [
            asyncio.ensure_future(self._frontend(client_r, server_w)),
            asyncio.ensure_future(self._pipe(server_r, client_w)),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        for writer in (client_w, server_w):
            writer.close()

    async def _frontend(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:  # startup: untyped messages until the StartupMessage itself
                head = await reader.readexactly(4)
                body = await reader.readexactly(int.from_bytes(head) - 4)
                writer.write(head + body)
                if int.from_bytes(body[:4]) not in _SSL_OR_GSS_REQUEST:
                    break
            while True:
                head = await reader.readexactly(5)
                body = await reader.readexactly(int.from_bytes(head[1:]) - 4)
                with self._lock:
                    self.counts[chr(head[0])] += 1
                writer.write(head + body)
                await writer.drain()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
