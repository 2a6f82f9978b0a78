"""Run an ASGI app under uvicorn on a loopback port in a daemon thread (its own event
loop): the demo's in-process emulator worker, and the test suite's real servers."""

from __future__ import annotations

import contextvars
import logging
import socket
import threading
import time
from typing import Any

import uvicorn

# uvicorn's access logger is process-wide: the main server's `log_level="info"` turns it
# on for these in-thread servers too (the demo's emulator logged every health probe).
# Requests they serve run with this flag set; the filter drops their access lines.
_QUIET = contextvars.ContextVar("comfygraph_quiet_access_log", default=False)


class _DropQuiet(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _QUIET.get()


def _quiet(app: Any) -> Any:
    async def quiet_app(scope: Any, receive: Any, send: Any) -> None:
        _QUIET.set(True)  # this request's task only
        await app(scope, receive, send)

    return quiet_app


_access = logging.getLogger("uvicorn.access")
if not any(isinstance(f, _DropQuiet) for f in _access.filters):
    _access.addFilter(_DropQuiet())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_in_thread(
    app: Any, *, port: int, timeout: float = 30.0, **config: Any
) -> tuple[uvicorn.Server, threading.Thread]:
    """Start serving and return once uvicorn listens; stop it with `should_exit = True`."""
    cfg = uvicorn.Config(_quiet(app), host="127.0.0.1", port=port, log_level="warning", **config)
    server = uvicorn.Server(cfg)  # in a thread, uvicorn leaves signals alone
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn exited during start-up")
        if time.monotonic() > deadline:
            raise TimeoutError(f"uvicorn did not start within {timeout:g} s")
        time.sleep(0.01)
    return server, thread
