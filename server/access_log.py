"""`serve --access-log`: one structured line per HTTP request, through the structlog
setup (server/logs.py), instead of uvicorn's text line. Fields: method, path, status,
duration_ms, and what is bound for the request (request_id, user_id), plus the GraphQL
operation name when one ran (`note_operation`, called by the operation timer).

Registered inside RequestId, so the request id is still bound when the line is
written; the line is written once the response has been sent."""

from __future__ import annotations

import contextvars
import time
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = structlog.get_logger("comfygraph.access")

# The fields of the request being served (None: no access log, nothing to note).
_CURRENT: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "comfygraph_access_fields", default=None
)


def note_operation(name: str | None) -> None:
    """Name the GraphQL operation of this request on its access line."""
    fields = _CURRENT.get()
    if fields is not None and name:
        fields["operation"] = name


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        fields: dict[str, Any] = {"method": scope["method"], "path": scope["path"]}
        status = 500  # an app that raised before answering: the server error it becomes
        sent: list[float] = []

        async def watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                sent.append(time.perf_counter())  # the last byte, before background tasks
            await send(message)

        token = _CURRENT.set(fields)
        try:
            await self.app(scope, receive, watched)
        finally:
            _CURRENT.reset(token)
            end = sent[0] if sent else time.perf_counter()
            # request_id and (once the view knew the viewer) user_id come from the
            # bound context, like on every other line of the request.
            logger.info(
                "request", **fields, status=status, duration_ms=round((end - start) * 1000, 3)
            )
