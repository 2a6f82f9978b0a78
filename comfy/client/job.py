"""Follow one prompt to its end: websocket events first, /history and /queue as the truth.

A :class:`Job` reads the prompt's messages from the client's shared socket and
decides the outcome from them, but never trusts the socket alone: after a gap in
the stream (:class:`Reconnected`, :class:`Lagged`) and whenever the prompt has been
quiet for ``poll_interval`` it reconciles from GET /history/{id} (finished?) and
GET /queue (still queued or running?). It gives up at its deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from comfygraph.comfy.errors import (
    ComfyError,
    ExecutionFailed,
    ExecutionInterrupted,
    JobStalled,
    JobTimeout,
    OutputMissing,
    PromptNotFound,
    WorkerUnavailable,
)
from comfygraph.comfy.messages import (
    HistoryEntry,
    NodeOutput,
    OutputFile,
    OutputValue,
    Queue,
    history_outcome,
    is_json_message,
    iter_outputs,
)

from .stream import Inbox, InboxClosed, Lagged, Reconnected, StreamItem

if TYPE_CHECKING:
    from .client import SubmitResult

JobEvent = StreamItem
"""What iterating a Job yields: the prompt's messages, plus stream gap markers."""


class _Reconciler(Protocol):
    async def history(self, prompt_id: str) -> HistoryEntry | None: ...

    async def queue(self) -> Queue: ...


@dataclass(frozen=True, slots=True)
class PromptResult:
    """A prompt that finished successfully, with everything its nodes reported.

    ``outputs`` comes from /history (node id -> ui dict). On ComfyUI <= 0.3.x it can
    include older outputs of nodes that were served from cache. ``node_errors`` are
    the outputs POST /prompt dropped at validation while accepting the rest.
    """

    prompt_id: str
    outputs: dict[str, NodeOutput]
    entry: HistoryEntry = field(repr=False)
    node_errors: dict[str, Any] = field(default_factory=dict)

    @property
    def files(self) -> list[OutputFile]:
        """Every output file of every kind (images, gifs, audio, video, ...)."""
        return [o for o in iter_outputs(self.outputs) if isinstance(o, OutputFile)]

    @property
    def values(self) -> list[OutputValue]:
        """Every non-file output (``text`` strings and the like)."""
        return [o for o in iter_outputs(self.outputs) if isinstance(o, OutputValue)]


class Job:
    """One prompt being watched; iterate it for its events, then :meth:`wait`.

    ``async for event in job`` yields the prompt's websocket messages and gap
    markers and stops once the outcome is known; :meth:`wait` then returns the
    :class:`PromptResult` or raises ExecutionFailed, ExecutionInterrupted,
    PromptNotFound, JobTimeout, OutputMissing or WorkerUnavailable (the worker stayed
    unreachable for ``unavailable_after`` seconds).
    """

    def __init__(
        self,
        client: _Reconciler,
        inbox: Inbox,
        prompt_id: str,
        *,
        timeout: float | None,
        poll_interval: float,
        unavailable_after: float,
        submitted: bool,
        stall_after: float | None = None,
    ):
        self.prompt_id = prompt_id
        self.submit_result: SubmitResult | None = None
        self._client = client
        self._inbox = inbox
        self._timeout = timeout
        self._poll_interval = poll_interval
        self._unavailable_after = unavailable_after
        self._submitted = submitted
        loop = asyncio.get_running_loop()
        self._deadline = None if timeout is None else loop.time() + timeout
        self._next_poll = loop.time() + poll_interval
        self._unavailable_since: float | None = None
        # Stall watchdog: the last time the prompt showed any change (a message, or
        # waiting in the queue, which is not stalling).
        self._stall_after = stall_after
        self._changed_at = loop.time()
        self._finished = False  # execution_success seen, or executing null
        self._done = False
        self._result: PromptResult | None = None
        self._error: ComfyError | None = None

    def _accepted(self, result: SubmitResult) -> None:
        """POST /prompt answered 200: from now on 'not found' means lost."""
        self.submit_result = result
        self._submitted = True

    @property
    def done(self) -> bool:
        return self._done

    def __aiter__(self) -> AsyncIterator[JobEvent]:
        return self

    async def __anext__(self) -> JobEvent:
        loop = asyncio.get_running_loop()
        while not self._done:
            now = loop.time()
            if self._deadline is not None and now >= self._deadline:
                assert self._timeout is not None
                self._fail(JobTimeout(self.prompt_id, self._timeout))
                break
            if self._stall_after is not None and now - self._changed_at >= self._stall_after:
                await self._reconcile()  # the truth first: queued (not stalled) or finished?
                if self._done:
                    break
                if loop.time() - self._changed_at >= self._stall_after:
                    self._fail(JobStalled(self.prompt_id, self._stall_after))
                    break
                continue
            if now >= self._next_poll:
                await self._reconcile()
                continue
            wake = min(
                self._next_poll,
                self._deadline if self._deadline is not None else self._next_poll,
                self._changed_at + self._stall_after if self._stall_after else self._next_poll,
            )
            try:
                item = await self._inbox.get(within=max(0.0, wake - now))
            except InboxClosed:
                self._fail(ComfyError("the ComfyUI client was closed while watching"))
                break
            if item is None:
                continue
            self._next_poll = loop.time() + self._poll_interval
            await self._handle(item)
            return item
        raise StopAsyncIteration

    async def wait(self) -> PromptResult:
        """Consume the remaining events and return the result, or raise the failure."""
        async for _ in self:
            pass
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    async def _handle(self, item: StreamItem) -> None:
        if isinstance(item, Reconnected | Lagged):
            await self._reconcile()
            return
        if not is_json_message(item):
            return
        self._submitted = True  # the worker knows the prompt
        self._changed_at = asyncio.get_running_loop().time()
        if item["type"] == "execution_success":
            self._finished = True
        elif item["type"] == "execution_error":
            # Without a timestamp it is an ExecutionBlocker notice and the run goes on.
            if "timestamp" in item["data"]:
                self._fail(ExecutionFailed(self.prompt_id, item["data"]))
        elif item["type"] == "execution_interrupted":
            self._fail(ExecutionInterrupted(self.prompt_id, item["data"]))
        elif item["type"] == "executing" and item["data"]["node"] is None:
            # Sent after history is written: the one reliable "results are readable".
            self._finished = True
            await self._reconcile()

    async def _reconcile(self) -> None:
        """Settle the outcome from /history, or learn from /queue that it is pending."""
        loop = asyncio.get_running_loop()
        self._next_poll = loop.time() + self._poll_interval
        try:
            entry = await self._client.history(self.prompt_id)
            if entry is None:
                queue = await self._client.queue()
                if self.prompt_id in queue:
                    if not queue.is_running(self.prompt_id):
                        self._changed_at = loop.time()  # queued behind others: not stalled
                    self._submitted = True
                    self._unavailable_since = None
                    return
                # It may have finished between the two calls.
                entry = await self._client.history(self.prompt_id)
        except WorkerUnavailable as exc:
            now = loop.time()
            if self._unavailable_since is None:
                self._unavailable_since = now
            elif now - self._unavailable_since >= self._unavailable_after:
                self._fail(exc)
            return
        except ComfyError as exc:
            self._fail(exc)
            return
        self._unavailable_since = None
        if entry is not None:
            self._settle(entry)
        elif self._finished:
            self._fail(OutputMissing(f"prompt {self.prompt_id} finished but has no history entry"))
        elif self._submitted:
            self._fail(PromptNotFound(self.prompt_id))

    def _settle(self, entry: HistoryEntry) -> None:
        outcome, data = history_outcome(entry)
        if outcome == "interrupted":
            self._fail(ExecutionInterrupted(self.prompt_id, data))
        elif outcome == "error":
            self._fail(ExecutionFailed(self.prompt_id, data))
        else:
            node_errors = dict(self.submit_result.node_errors) if self.submit_result else {}
            self._result = PromptResult(
                prompt_id=self.prompt_id,
                outputs=dict(entry.get("outputs") or {}),
                entry=entry,
                node_errors=node_errors,
            )
            self._done = True

    def _fail(self, error: ComfyError) -> None:
        if not self._done:
            self._error = error
            self._done = True


async def drain(job: Job, on_event: Callable[[JobEvent], Awaitable[None] | None] | None) -> None:
    """Feed every event of ``job`` to ``on_event`` (sync or async) until it ends."""
    async for event in job:
        if on_event is not None:
            outcome = on_event(event)
            if outcome is not None:
                await outcome
