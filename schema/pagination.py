"""Relay connections with keyset cursors.

A cursor is the position (created_at to the microsecond, id) of a row, HMAC-signed so
that a tampered cursor, one minted by another server, or one of another kind of
connection is refused with BAD_CURSOR instead of reaching the database:

    urlsafe-base64( version:1 | kind:1 | created_at µs since epoch:8 | id:16 | mac:12 )

Signing is lazy (LazyCursor): an edge's cursor is signed only when `cursor` is selected
or it is the page's start/endCursor, once, as the compiled path does (a feed page that
asks only for endCursor signs one cursor, not twenty).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import re
import struct
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, Generic, TypeVar

import strawberry

from comfygraph.schema.errors import BAD_CURSOR, ApiError, invalid_argument

MAX_PAGE = 100
DEFAULT_PAGE = 20

NodeT = TypeVar("NodeT")


class LazyCursor:
    """A row's cursor, signed the first time it is read."""

    __slots__ = ("_codec", "_created_at", "_kind", "_row_id", "_value")

    def __init__(
        self, codec: CursorCodec, kind: CursorKind, created_at: datetime, row_id: uuid.UUID
    ) -> None:
        self._codec, self._kind, self._created_at, self._row_id = codec, kind, created_at, row_id
        self._value: str | None = None

    @property
    def value(self) -> str:
        if self._value is None:
            self._value = self._codec.encode(self._kind, self._created_at, self._row_id)
        return self._value


def _end_cursor(root: PageInfo) -> str | None:
    return None if root.end is None else root.end.value


def _start_cursor(root: PageInfo) -> str | None:
    return None if root.start is None else root.start.value


def _edge_cursor(root: Edge[Any]) -> str:
    return root.position.value


# Resolved fields declared in the schema's field order (a method would move to the end).
@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None = strawberry.field(resolver=_end_cursor)
    has_previous_page: bool = False
    start_cursor: str | None = strawberry.field(resolver=_start_cursor)
    start: strawberry.Private[LazyCursor | None] = None
    end: strawberry.Private[LazyCursor | None] = None


@strawberry.type
class Edge(Generic[NodeT]):
    cursor: str = strawberry.field(resolver=_edge_cursor)
    node: NodeT = strawberry.field()
    position: strawberry.Private[LazyCursor] = dataclasses.field()


@strawberry.type
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]]
    page_info: PageInfo
    count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="Counted only when asked for.")
    async def total_count(self) -> int:
        return await self.count()


def page_size(first: int | None) -> int:
    """`first` checked against the page limits (null means the default)."""
    if first is None:
        return DEFAULT_PAGE
    if not 1 <= first <= MAX_PAGE:
        raise invalid_argument("first", f"first must be between 1 and {MAX_PAGE}, got {first}")
    return first


class CursorKind(Enum):
    JOBS = b"J"
    SESSIONS = b"S"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_LAYOUT = struct.Struct(">Bcq16s")
_MAC_BYTES = 12
_VERSION = 1
_SHAPE = re.compile(r"[A-Za-z0-9_-]{10,80}")


class CursorCodec:
    """Signs and checks cursors with a key derived from the server's JWT secret."""

    def __init__(self, secret: str) -> None:
        self._key = hmac.digest(secret.encode(), b"comfygraph cursor v1", hashlib.sha256)
        #: cursors signed so far (how lazy signing is seen to work)
        self.signed = 0

    def encode(self, kind: CursorKind, created_at: datetime, row_id: uuid.UUID) -> str:
        self.signed += 1
        micros = (created_at - _EPOCH) // _MICROSECOND
        body = _LAYOUT.pack(_VERSION, kind.value, micros, row_id.bytes)
        mac = hmac.digest(self._key, body, hashlib.sha256)[:_MAC_BYTES]
        return base64.urlsafe_b64encode(body + mac).rstrip(b"=").decode()

    def decode(self, kind: CursorKind, cursor: str) -> tuple[datetime, uuid.UUID]:
        """The position a cursor names; BAD_CURSOR for anything this server did not sign."""
        if not _SHAPE.fullmatch(cursor):
            raise _bad_cursor()
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except binascii.Error:
            raise _bad_cursor() from None
        body, mac = raw[: _LAYOUT.size], raw[_LAYOUT.size :]
        expected = hmac.digest(self._key, body, hashlib.sha256)[:_MAC_BYTES]
        if len(raw) != _LAYOUT.size + _MAC_BYTES or not hmac.compare_digest(mac, expected):
            raise _bad_cursor()
        version, tag, micros, id_bytes = _LAYOUT.unpack(body)
        if version != _VERSION or tag != kind.value:
            raise _bad_cursor("this cursor belongs to another list")
        try:
            created_at = _EPOCH + micros * _MICROSECOND
        except OverflowError:
            raise _bad_cursor() from None
        return created_at, uuid.UUID(bytes=id_bytes)


def _bad_cursor(message: str = "invalid cursor") -> ApiError:
    return ApiError(BAD_CURSOR, message, argument="after")
