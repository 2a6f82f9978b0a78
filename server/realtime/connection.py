"""One websocket, whatever its protocol: its outbox, its subscriptions (members of
shared streams), and its record in websocket_connections."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from graphql import GraphQLError
from starlette.websockets import WebSocket

from comfygraph.resolvers.context import Context
from comfygraph.resolvers.subscriptions import audience
from comfygraph.server.realtime.frames import COMPLETE, TRANSPORT_WS, Frame, Spelling
from comfygraph.server.realtime.live import StreamContext
from comfygraph.server.realtime.outbox import Member, Outbox, State
from comfygraph.server.realtime.plans import Plan

if TYPE_CHECKING:
    from comfygraph.server.realtime.service import Realtime

log = logging.getLogger(__name__)

TOO_MANY_SUBSCRIPTIONS = "TOO_MANY_SUBSCRIPTIONS"
#: close code when the token a websocket signed in with expires
TOKEN_EXPIRED = 4403
_PING = '{"type":"ping"}'
_slots = itertools.count()
_KEEP_ALIVE = '{"type":"ka"}'


class LiveConnection:
    def __init__(
        self, realtime: Realtime, websocket: WebSocket, context: Context, protocol: str
    ) -> None:
        self.realtime = realtime
        self.websocket = websocket
        self.context = context
        self.protocol = protocol
        self.id = uuid.uuid4().hex
        self.outbox = Outbox(websocket, realtime.settings.ws_send_queue)
        self.members: dict[str, Member] = {}
        self.acknowledged = False
        #: which second of the keep-alive interval this connection is pinged in
        self.slot = next(_slots)
        self._sent = -1  # frames written as of the last keep-alive round
        self._expiry: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------------
    def open(self) -> None:
        self.realtime.opened(self)

    def signed_in(self) -> None:
        """connection_init was accepted: the connection counts from now on."""
        self.acknowledged = True
        client = self.websocket.client
        viewer = self.context.viewer
        self.realtime.log_of(self.context.services).opened(
            self.id,
            user_id=viewer.user_id,
            client_ip=client.host if client else None,
            user_agent=self.websocket.headers.get("user-agent"),
            metadata={"protocol": self.protocol},
        )
        if self.protocol != TRANSPORT_WS:
            self.outbox.put_text(_KEEP_ALIVE)  # graphql-ws: "ka" right after the ack
        if self.context.token_expires_at is not None:
            self._expiry = asyncio.create_task(self._expire(self.context.token_expires_at))

    async def _expire(self, at: float) -> None:
        """The token ran out: the socket closes with 4403 (the client may reconnect with a
        fresh token); nothing more is streamed on the old one."""
        await asyncio.sleep(max(0.0, at - time.time()))
        for member in list(self.members.values()):
            member.leave()
        self.members.clear()
        with contextlib.suppress(Exception):
            await self.websocket.close(code=TOKEN_EXPIRED, reason="token expired")

    async def close(self) -> None:
        if self._expiry is not None and self._expiry is not asyncio.current_task():
            self._expiry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._expiry
        self._expiry = None
        for member in list(self.members.values()):
            member.leave()
        self.members.clear()
        await self.outbox.aclose()
        self.realtime.closed(self)

    def keepalive(self) -> None:
        if not self.acknowledged:
            return
        if self.protocol == TRANSPORT_WS:
            # A socket that carried frames since the last round needs no ping (graphql-ws
            # clients, though, count "ka" messages themselves: they always get one).
            if self.outbox.sent == self._sent:
                self.outbox.put_text(_PING, droppable=True)
            self._sent = self.outbox.sent  # (the ping itself does not count as traffic)
        else:
            self.outbox.put_text(_KEEP_ALIVE, droppable=True)

    # -- subscriptions -------------------------------------------------------------
    @property
    def count(self) -> int:
        return len(self.members)

    def plan(self, payload: Mapping[str, Any]) -> Plan | list[GraphQLError] | None:
        return self.realtime.plans.plan(
            payload["query"], payload.get("variables"), payload.get("operationName")
        )

    def refuse(self, operation_id: str, errors: list[GraphQLError]) -> None:
        """End an operation before it started (an invalid subscription, a limit)."""
        frame = Frame.error(errors)
        self.outbox.put_text(Spelling(self.protocol, operation_id).render(frame))

    async def subscribe(self, operation_id: str, plan: Plan) -> None:
        member = Member(self.outbox, Spelling(self.protocol, operation_id), operation_id,
                        self._ended)  # fmt: skip
        self.members[operation_id] = member
        try:
            # The per-client permission check, and the viewers it may share a stream with.
            seen_as = await audience(self.context, plan.field, plan.args)
        except GraphQLError as exc:
            member.end(Frame.error([exc]))
            return
        except Exception as exc:
            log.exception("checking a %s subscription failed", plan.field)
            member.end(Frame.error([GraphQLError(str(exc), original_error=exc)]))
            return
        if member.state is not State.ACTIVE:
            return
        if seen_as.session_id is not None and self.acknowledged:
            self.realtime.log_of(self.context.services).session(self.id, seen_as.session_id)
        key: tuple[object, ...] = (plan.key, seen_as.key)
        if not self.realtime.settings.ws_share_streams:
            key = (*key, id(member))
        self.realtime.streams.join(key, member, plan, self._stream_context)

    def unsubscribe(self, operation_id: Any, *, confirm: bool = False) -> bool:
        """The client ended a subscription; False when it is not one of ours."""
        member = self.members.pop(operation_id, None) if isinstance(operation_id, str) else None
        if member is None:
            return False
        member.leave()
        if confirm:
            self.outbox.put_text(member.spelling.render(COMPLETE))
        return True

    def _ended(self, member: Member) -> None:
        if self.members.get(member.operation_id) is member:
            del self.members[member.operation_id]

    def _stream_context(self) -> StreamContext:
        ctx = self.context
        return StreamContext.of(ctx, self.realtime.queue_watch_of(ctx.services))
