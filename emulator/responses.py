"""Response helpers that reproduce aiohttp's bodies where clients can see the difference."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from comfygraph.emulator.state import EmulatorState


def state_of(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.emulator
    return state


def ok_empty() -> Response:
    """`web.Response(status=200)`: no body, no Content-Type."""
    return Response(status_code=200)


def status_only(code: int) -> Response:
    return Response(status_code=code)


def server_error() -> Response:
    """aiohttp's page for an unhandled exception in a handler (e.g. malformed JSON)."""
    return PlainTextResponse(
        "500 Internal Server Error\n\nServer got itself in trouble", status_code=500
    )


def json_response(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)
