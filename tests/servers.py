"""Run an ASGI app under real uvicorn on a free loopback port, in a thread.

The shape follows httpx's own test suite: a real server and real sockets, so
tests exercise the same HTTP and websocket stack that production runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from comfygraph.server.threaded import free_port, start_in_thread

__all__ = ["free_port", "serve_in_thread"]


@contextlib.contextmanager
def serve_in_thread(app: Any, *, port: int | None = None, **config: Any) -> Iterator[str]:
    """Yield the base URL (http://127.0.0.1:PORT) while uvicorn serves `app`."""
    port = port or free_port()
    server, thread = start_in_thread(app, port=port, **config)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
