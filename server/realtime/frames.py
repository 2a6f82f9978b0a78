"""One event of a shared stream, serialised once, and how each subscriber's frame is
spelled in its protocol.

A :class:`Frame` holds the JSON of the GraphQL payload (``{"data": ..., "errors": ...}``)
made once per event. A subscriber's wire message only adds its operation id around it:
``{"id":"1","type":"next","payload":<shared>}`` (graphql-transport-ws) or
``{"type":"data","id":"1","payload":<shared>}`` (graphql-ws), a string concatenation.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from graphql import GraphQLError

from comfygraph.schema.error_policy import finalize
from comfygraph.server.realtime.wire import text_frame

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"


class Kind(enum.Enum):
    NEXT = "next"
    ERROR = "error"
    COMPLETE = "complete"


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


class Frame:
    """What a stream hands to every subscriber: the same object, shared, read-only."""

    __slots__ = ("errors", "kind", "payload", "transient", "wire")

    def __init__(
        self,
        kind: Kind,
        payload: str = "",
        *,
        errors: tuple[Mapping[str, Any], ...] = (),
        transient: bool = False,
    ) -> None:
        self.kind = kind
        self.payload = payload
        self.errors = errors
        #: a newer frame of the same subscription may replace it while it waits
        self.transient = transient
        #: the websocket frames made of it, by message prefix (Spelling.wire)
        self.wire: dict[str, bytes] | None = None

    @property
    def terminal(self) -> bool:
        return self.kind is not Kind.NEXT

    @classmethod
    def next(
        cls,
        data: Any,
        errors: Iterable[GraphQLError] | None = None,
        extensions: Mapping[str, Any] | None = None,
        *,
        transient: bool = False,
    ) -> Frame:
        payload: dict[str, Any] = {"data": data}
        if errors:
            payload["errors"] = [e.formatted for e in finalize(list(errors))]
        if extensions:
            payload["extensions"] = extensions
        return cls(Kind.NEXT, _json(payload), transient=transient)

    @classmethod
    def error(cls, errors: Iterable[GraphQLError]) -> Frame:
        formatted = tuple(e.formatted for e in finalize(list(errors)))
        return cls(Kind.ERROR, _json(list(formatted)), errors=formatted)


COMPLETE = Frame(Kind.COMPLETE)
#: distinct operation ids whose frame is kept per event (the rest are built each time)
_WIRE_PREFIXES = 64


class Spelling:
    """How one subscription's frames read on the wire (its protocol and operation id)."""

    __slots__ = ("_complete", "_error", "_next", "protocol")

    def __init__(self, protocol: str, operation_id: str) -> None:
        self.protocol = protocol
        op = _json(operation_id)
        if protocol == TRANSPORT_WS:
            self._next = f'{{"id":{op},"type":"next","payload":'
            self._error = f'{{"id":{op},"type":"error","payload":'
            self._complete = f'{{"id":{op},"type":"complete"}}'
        else:
            self._next = f'{{"type":"data","id":{op},"payload":'
            self._error = f'{{"type":"error","id":{op},"payload":'
            self._complete = f'{{"type":"complete","id":{op}}}'

    def wire(self, frame: Frame) -> bytes:
        """A `next` frame as one websocket text frame, made once per frame for every
        subscriber whose messages start the same (same protocol, same operation id)."""
        made = frame.wire
        if made is None:
            made = frame.wire = {}
        data = made.get(self._next)
        if data is None:
            data = text_frame((self._next + frame.payload + "}").encode())
            if len(made) < _WIRE_PREFIXES:
                made[self._next] = data
        return data

    def render(self, frame: Frame) -> str:
        if frame.kind is Kind.NEXT:
            return self._next + frame.payload + "}"
        if frame.kind is Kind.COMPLETE:
            return self._complete
        if self.protocol == TRANSPORT_WS:
            return self._error + frame.payload + "}"
        # graphql-ws carries one error object, as strawberry sends it
        first = frame.errors[0] if frame.errors else {"message": "error"}
        return self._error + _json(first) + "}"
