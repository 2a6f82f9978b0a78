"""Where a webhook may be sent: https only (http for hosts a setting allows), and never to
an address inside the network (loopback, private, link-local, cloud metadata, any other
non-global range) unless WEBHOOK_ALLOW_PRIVATE. Checked when an endpoint is created and
again, on the freshly resolved addresses, before every attempt (DNS may change)."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

EVENTS = (
    "job.completed",
    "job.failed",
    "job.cancelled",
    "job.progress",
    "session.completed",
    "session.failed",
)
MAX_URL = 2000


class UnsafeUrl(Exception):
    """The URL may not receive webhooks; the message says why."""


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` + base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def _blocked(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    # is_global is False for loopback, RFC 1918, link-local (169.254.169.254, the
    # metadata address, included), CGNAT, ULA (fd00:ec2::254) and reserved ranges.
    return not ip.is_global or ip.is_multicast


@dataclass(frozen=True)
class WebhookPolicy:
    allow_private: bool = False
    http_hosts: frozenset[str] = field(default_factory=frozenset)

    def check_url(self, url: str) -> str:
        """The URL if its form is acceptable; UnsafeUrl otherwise (no DNS here)."""
        if len(url) > MAX_URL:
            raise UnsafeUrl(f"a webhook URL has at most {MAX_URL} characters")
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("https", "http") or not host:
            raise UnsafeUrl("a webhook URL must be an absolute https:// URL")
        if parts.scheme == "http" and host not in self.http_hosts:
            raise UnsafeUrl(
                f"a webhook URL must use https (http is allowed only for: "
                f"{', '.join(sorted(self.http_hosts)) or 'no host'})"
            )
        if parts.username or parts.password:
            raise UnsafeUrl("a webhook URL may not carry credentials")
        try:
            port = parts.port
        except ValueError:
            raise UnsafeUrl("the webhook URL's port is not a number") from None
        del port
        return url

    async def check_address(self, url: str) -> None:
        """Resolve the URL's host; UnsafeUrl if it cannot be or any address is internal."""
        self.check_url(url)
        if self.allow_private:
            return
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            raise UnsafeUrl(f"cannot resolve {host}: {exc}") from None
        addresses: Sequence[str] = sorted({str(info[4][0]) for info in infos})
        bad = [a for a in addresses if _blocked(a)]
        if bad or not addresses:
            raise UnsafeUrl(
                f"{host} resolves to an internal address ({', '.join(bad) or 'none'}); "
                "webhooks go to public addresses only"
            )
