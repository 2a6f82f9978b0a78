"""ComfyUI's origin-only guard: 403 when a loopback Host meets a different Origin.

Protects a local server from pages on other sites (DNS rebinding / CSRF); requests
without an Origin header (every non-browser client) are unaffected.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send


def _is_loopback(hostname: str | None) -> bool:
    if not hostname:
        return False
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def forbidden(host: str, origin: str) -> bool:
    host_parts = urlsplit("//" + host.lower())
    origin_parts = urlsplit(origin.lower())
    if not _is_loopback(host_parts.hostname):
        return False
    host_domain: str | None = host.lower()
    origin_domain: str | None = origin_parts.netloc
    if origin_parts.port is None:  # compare without ports when either side has none
        host_domain = host_parts.hostname
    if host_parts.port is None:
        origin_domain = origin_parts.hostname
    return bool(host_domain and origin_domain and host_domain != origin_domain)


class OriginGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            headers = {
                k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
            }
            if (
                "host" in headers
                and "origin" in headers
                and forbidden(headers["host"], headers["origin"])
            ):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})  # uvicorn answers 403
                    return
                await send(
                    {
                        "type": "http.response.start",
                        "status": 403,
                        "headers": [(b"content-length", b"0")],
                    }
                )
                await send({"type": "http.response.body", "body": b""})
                return
        await self.app(scope, receive, send)
