"""Run an ASGI app under uvicorn on a loopback port in a daemon thread (its own event
loop): the demo's in-process emulator worker, and the test suite's real servers."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_in_thread(
    app: Any, *, port: int, timeout: float = 30.0, **config: Any
) -> tuple[uvicorn.Server, threading.Thread]:
    """Start serving and return once uvicorn listens; stop it with `should_exit = True`."""
    cfg = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **config)
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
