"""Redis pub/sub, with a dedicated subscriber connection that comes back.

broadcaster 0.3.1's Redis backend lets redis-py reconnect its PubSub silently (nobody
learns that messages were lost) and, with redis-py 8, loses the first subscription
outright: its listener task wakes before redis-py records the channel, finds nothing
subscribed, and waits for a signal that never comes. Here:

- one raw connection (``CLIENT SETNAME`` "<client_name>/listen", no retries, no socket
  timeout) only SUBSCRIBEs; a reader task owns its replies and reports EOF (``CLIENT
  KILL``, a restart) at once, a PING every ``ping_interval`` catches a half-open
  one, and :class:`ListeningBackend` reconnects and re-subscribes;
- a SUBSCRIBE counts as done when the PING sent after it is answered (Redis answers in
  order), so a subscriber is listening when ``subscribe`` returns;
- PUBLISH goes through a small pool of its own ("<client_name>/publish") and is retried
  once on a fresh connection after a connection error.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from redis import asyncio as aioredis
from redis.asyncio.connection import AbstractConnection, BlockingConnectionPool, ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from comfygraph.bus.backends.base import BackendOptions, ListeningBackend
from comfygraph.bus.errors import PublishError
from comfygraph.bus.tasks import cancel_and_wait

log = logging.getLogger(__name__)

_SUBSCRIBE_BATCH = 500


class RedisBackend(ListeningBackend):
    def __init__(self, url: str, options: BackendOptions | None = None) -> None:
        super().__init__(options or BackendOptions())
        opts = self.options
        self._url = url
        # Only a factory for the listening connection: it is never checked out of a pool.
        self._links = ConnectionPool.from_url(
            url,
            socket_timeout=None,
            socket_connect_timeout=opts.connect_timeout,
            client_name=f"{opts.client_name}/listen",
            retry=Retry(NoBackoff(), 0),
            protocol=2,
        )
        self._publisher: aioredis.Redis | None = None
        self._conn: AbstractConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pongs: deque[asyncio.Future[None]] = deque()

    async def publish(self, channel: str, message: Any) -> None:
        client = self._publisher
        if client is None:
            raise PublishError("the Redis backend is not connected")
        try:
            await client.publish(channel, message)
        except (RedisError, OSError) as exc:
            raise PublishError(f"PUBLISH on {channel!r} failed: {exc!r}") from exc

    async def publish_many(self, channels: tuple[str, ...], message: Any) -> None:
        """The PUBLISHes in one pipeline (one round trip), in order."""
        client = self._publisher
        if client is None:
            raise PublishError("the Redis backend is not connected")
        try:
            async with client.pipeline(transaction=False) as pipe:
                for channel in channels:
                    pipe.publish(channel, message)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise PublishError(f"PUBLISH on {channels!r} failed: {exc!r}") from exc

    # -- publisher -------------------------------------------------------------------
    async def _open_publisher(self) -> None:
        opts = self.options
        pool = BlockingConnectionPool.from_url(
            self._url,
            max_connections=opts.publish_connections,
            timeout=opts.command_timeout,
            socket_timeout=opts.command_timeout,
            socket_connect_timeout=opts.connect_timeout,
            client_name=f"{opts.client_name}/publish",
            retry=Retry(NoBackoff(), 1),
        )
        self._publisher = aioredis.Redis.from_pool(pool)
        await self._publisher.ping()

    async def _close_publisher(self) -> None:
        client, self._publisher = self._publisher, None
        if client is not None:
            try:
                async with asyncio.timeout(self.options.command_timeout):
                    await client.aclose()
            except (TimeoutError, RedisError, OSError) as exc:
                log.debug("closing the Redis publisher: %r", exc)

    # -- listening link ----------------------------------------------------------------
    async def _open_link(self) -> None:
        conn = self._links.make_connection()
        try:
            await conn.connect()
        except BaseException:
            await conn.disconnect(nowait=True)
            raise
        self._conn = conn
        self._reader = asyncio.create_task(self._read(conn), name="events-redis-reader")

    async def _close_link(self) -> None:
        conn, self._conn = self._conn, None
        await cancel_and_wait(self._reader)
        self._reader = None
        self._fail_pongs()
        if conn is not None:
            try:
                await conn.disconnect(nowait=True)
            except (RedisError, OSError) as exc:
                log.debug("closing the Redis listener: %r", exc)

    async def _listen(self, channels: list[str]) -> None:
        conn = self._live()
        for start in range(0, len(channels), _SUBSCRIBE_BATCH):
            await conn.send_command("SUBSCRIBE", *channels[start : start + _SUBSCRIBE_BATCH])
        if channels:
            await self._roundtrip(conn)

    async def _unlisten(self, channel: str) -> None:
        await self._live().send_command("UNSUBSCRIBE", channel)

    async def _ping(self) -> None:
        await self._roundtrip(self._live())

    def _live(self) -> AbstractConnection:
        # Checked before every send: redis-py would silently open a fresh socket otherwise.
        conn = self._conn
        if conn is None or not conn.is_connected:
            raise ConnectionError("the Redis listening connection is closed")
        return conn

    async def _roundtrip(self, conn: AbstractConnection) -> None:
        """Send PING and wait for its answer: every command sent before it was processed."""
        pong = asyncio.get_running_loop().create_future()
        self._pongs.append(pong)
        try:
            await conn.send_command("PING", check_health=False)
        except BaseException:
            # Not sent (redis-py has dropped the connection): no answer will come for it.
            if pong in self._pongs:
                self._pongs.remove(pong)
            raise
        await pong

    async def _read(self, conn: AbstractConnection) -> None:
        try:
            while True:
                self._on_reply(await conn.read_response())
                await self._wait_for_room()
        except Exception as exc:
            if conn is self._conn:
                log.info("Redis listening connection ended: %r", exc)
                self._link_lost()
        finally:
            self._fail_pongs()

    def _on_reply(self, reply: Any) -> None:
        if isinstance(reply, list):
            kind = reply[0]
            if kind == b"message":
                self._deliver(reply[1].decode(), reply[2].decode())
            elif kind == b"pong":
                self._pong()
        elif reply in (b"PONG", "PONG"):
            self._pong()

    def _pong(self) -> None:
        if self._pongs:
            waiter = self._pongs.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def _fail_pongs(self) -> None:
        while self._pongs:
            waiter = self._pongs.popleft()
            if not waiter.done():
                waiter.set_exception(ConnectionError("the Redis listening connection closed"))
