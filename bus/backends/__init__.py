"""Backends for the event bus, one per BROADCAST_URL scheme; all are broadcaster backends."""

from __future__ import annotations

from urllib.parse import urlsplit

from broadcaster import BroadcastBackend

from comfygraph.bus.backends.base import BackendOptions, ListeningBackend, ReconnectEvent

__all__ = ["BackendOptions", "ListeningBackend", "ReconnectEvent", "create_backend"]


def create_backend(url: str, options: BackendOptions | None = None) -> BroadcastBackend:
    """memory:// | postgres(ql):// | redis(s):// -> a backend; connects nothing yet."""
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        from comfygraph.bus.backends.memory import MemoryBackend

        return MemoryBackend(url)
    if scheme in ("postgres", "postgresql"):
        from comfygraph.bus.backends.postgres import PostgresBackend

        return PostgresBackend(url, options)
    if scheme in ("redis", "rediss"):
        from comfygraph.bus.backends.redis import RedisBackend

        return RedisBackend(url, options)
    raise ValueError(f"unsupported broadcast URL scheme {scheme!r} (memory, postgres, redis)")
