"""Shared executions: one per distinct (document, variables, audience) in this process.

The first client to subscribe starts a :class:`Stream`: one task that runs the
subscription through strawberry (resolver, selection set, extensions) with a context of
its own, turns each result into one :class:`Frame` (serialised once) and hands that same
object to every member. Later clients with the same key join it: they get the last full
state first (when the resolver marked one), then what follows. The last member to leave
cancels the task, which releases the resolver's bus subscription.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable

from graphql import GraphQLError
from strawberry.schema import BaseSchema
from strawberry.types.execution import PreExecutionError
from strawberry.utils.aio import aclosing

from comfygraph.server.realtime.frames import COMPLETE, Frame
from comfygraph.server.realtime.live import StreamContext
from comfygraph.server.realtime.outbox import Member
from comfygraph.server.realtime.plans import Plan

log = logging.getLogger(__name__)


class Stream:
    __slots__ = ("finished", "key", "members", "registry", "snapshot", "task")

    def __init__(self, registry: Streams, key: Hashable) -> None:
        self.registry = registry
        self.key = key
        self.members: dict[Member, None] = {}
        self.snapshot: Frame | None = None
        self.task: asyncio.Task[None] | None = None
        self.finished = False

    def add(self, member: Member) -> None:
        self.members[member] = None
        member.stream = self
        if self.snapshot is not None:
            member.deliver(self.snapshot)

    def remove(self, member: Member) -> None:
        self.members.pop(member, None)
        if not self.members and not self.finished:
            self.registry._abandon(self)

    async def run(self, schema: BaseSchema, plan: Plan, context: StreamContext) -> None:
        try:
            source = await schema.subscribe(
                plan.query,
                variable_values=plan.variables,
                context_value=context,
                operation_name=plan.operation_name,
            )
            first = True
            async with aclosing(source):
                async for result in source:
                    if first and isinstance(result, PreExecutionError):
                        self._finish(Frame.error(result.errors or [GraphQLError("invalid")]))
                        return
                    first = False
                    state, transient = context.take_hints()
                    frame = Frame.next(
                        result.data, result.errors, result.extensions, transient=transient
                    )
                    if state:
                        self.snapshot = frame
                    self._publish(frame)
            self._finish(COMPLETE)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("subscription stream %s failed", plan.field)
            self._finish(Frame.error([GraphQLError(str(exc), original_error=exc)]))

    def _publish(self, frame: Frame) -> None:
        registry = self.registry
        registry.frames += 1
        registry.deliveries += len(self.members)
        for member in tuple(self.members):
            member.deliver(frame)

    def _finish(self, frame: Frame) -> None:
        self.finished = True
        self.registry._forget(self)
        for member in tuple(self.members):
            member.deliver(frame)
        self.members.clear()


class Streams:
    """The per-process registry of running streams, by key."""

    def __init__(self, schema: BaseSchema) -> None:
        self._schema = schema
        self._streams: dict[Hashable, Stream] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.executions = 0  # streams started
        self.frames = 0  # results serialised
        self.deliveries = 0  # frames handed to members

    def __len__(self) -> int:
        return len(self._streams)

    @property
    def members(self) -> int:
        return sum(len(s.members) for s in self._streams.values())

    @property
    def tasks(self) -> int:
        return len(self._tasks)

    def join(
        self, key: Hashable, member: Member, plan: Plan, context: Callable[[], StreamContext]
    ) -> None:
        stream = self._streams.get(key)
        if stream is not None:
            stream.add(member)
            return
        stream = self._streams[key] = Stream(self, key)
        stream.add(member)
        self.executions += 1
        task = asyncio.create_task(
            stream.run(self._schema, plan, context()), name=f"ws-stream {plan.field}"
        )
        stream.task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _forget(self, stream: Stream) -> None:
        if self._streams.get(stream.key) is stream:
            del self._streams[stream.key]

    def _abandon(self, stream: Stream) -> None:
        self._forget(stream)
        if stream.task is not None:
            stream.task.cancel()

    async def aclose(self) -> None:
        for stream in list(self._streams.values()):
            self._abandon(stream)
        if self._tasks:
            await asyncio.wait(set(self._tasks))
