"""The wire format of an event, and the limits every backend shares.

An event is a JSON object (``data``) published on a channel, with an optional coalescing
key. On the wire it travels as ``{"d": data}`` or ``{"d": data, "k": key}``. The limits
are PostgreSQL's, applied to every backend so code that works on ``memory://`` works
in production too:

- a channel name is at most 63 bytes of UTF-8 (an identifier: LISTEN would silently
  truncate a longer name while ``pg_notify`` refuses it);
- an encoded event is at most 7,999 bytes (NOTIFY refuses 8,000 and more). Put large
  things in the database and publish their id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from comfygraph.bus.errors import EventTooLarge, InvalidChannel

MAX_CHANNEL_BYTES = 63
MAX_EVENT_BYTES = 7999


@dataclass(frozen=True, slots=True)
class Message:
    """One published event, decoded once and shared by every local subscriber.

    Treat ``data`` as read-only: the same dict goes to all of them.
    """

    channel: str
    data: Mapping[str, Any]


def check_channel(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidChannel(f"a channel name must be a non-empty string, got {name!r}")
    if len(name.encode()) > MAX_CHANNEL_BYTES or "\x00" in name:
        raise InvalidChannel(
            f"channel name {name[:80]!r} is over {MAX_CHANNEL_BYTES} bytes or holds a NUL"
        )
    return name


def encode(data: Mapping[str, Any], coalesce: str | None = None) -> str:
    """The wire text of an event; raises EventTooLarge past MAX_EVENT_BYTES.

    ``data`` must be orjson-serialisable (uuid and datetime values become strings).
    """
    envelope: dict[str, Any] = {"d": data if isinstance(data, dict) else dict(data)}
    if coalesce is not None:
        envelope["k"] = coalesce
    raw = orjson.dumps(envelope)
    if len(raw) > MAX_EVENT_BYTES:
        kind = data.get("type", "?")
        raise EventTooLarge(
            f"event {kind!r} is {len(raw)} bytes encoded, over the {MAX_EVENT_BYTES}-byte "
            "limit of PostgreSQL NOTIFY: publish an id and let subscribers read the rest"
        )
    return raw.decode()


def decode(message: str | bytes) -> tuple[dict[str, Any], str | None]:
    """``(data, coalescing key)`` of a wire text; ValueError when it is not one of ours."""
    envelope = orjson.loads(message)
    if not isinstance(envelope, dict) or not isinstance(data := envelope.get("d"), dict):
        raise ValueError("not an event envelope")
    key = envelope.get("k")
    if key is not None and not isinstance(key, str):
        raise ValueError("coalescing key is not a string")
    return data, key
