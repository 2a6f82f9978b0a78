"""Exceptions raised by the ComfyUI client.

Every failure of a call to a ComfyUI worker surfaces as one of these; httpx and
websockets exceptions are translated at the boundary (``raise X from exc``), so
callers never need to import either library to handle errors.

Hierarchy::

    ComfyError                      base of everything below
    ├── WorkerUnavailable           cannot reach the worker: connect refused/reset,
    │                               timeout, HTTP 5xx, websocket cannot be (re)opened
    ├── PromptRejected              POST /prompt refused the graph (HTTP 400; 409 for a
    │                               duplicate prompt_id on newer servers); keeps the
    │                               structured ``error`` and ``node_errors``
    ├── ExecutionFailed             the prompt ran and a node raised (execution_error)
    ├── ExecutionInterrupted        the prompt was interrupted (execution_interrupted)
    ├── PromptNotFound              the worker knows nothing of a prompt that was
    │                               submitted: deleted from the queue, evicted from
    │                               history, or the worker restarted
    ├── JobTimeout                  a watched prompt did not finish within its deadline
    ├── OutputMissing               an output file or a finished prompt's history entry
    │                               is not there (e.g. GET /view answered 404)
    └── ProtocolError               the worker answered something this client does not
                                    understand (unexpected status, malformed payload)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ComfyError(Exception):
    """Base class of every error raised by :mod:`comfy.client`."""


class WorkerUnavailable(ComfyError):
    """The worker could not be reached or could not serve the request.

    Raised for connection failures, timeouts, HTTP 5xx answers and websocket
    handshakes that fail. Retrying later, or on another worker, may succeed.
    ``status_code`` is set when the worker did answer (5xx). ``reached`` is False when
    no connection could be made (refused, or the connect timed out): the request never
    left this host, so nothing it asked for can have happened on the worker.
    """

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        status_code: int | None = None,
        reached: bool = True,
    ):
        super().__init__(message)
        self.url = url
        self.status_code = status_code
        self.reached = reached


class PromptRejected(ComfyError):
    """POST /prompt refused the graph; nothing was queued.

    ``error`` is ComfyUI's ``{"type", "message", "details", "extra_info"}`` object and
    ``node_errors`` maps node id to ``{"errors": [...], "dependent_outputs": [...],
    "class_type": ...}``. ``node_errors`` is often empty (unknown class_type, no output
    node), and ``error["details"]`` is often empty when the culprit is upstream: read both.
    """

    def __init__(
        self,
        error: Mapping[str, Any],
        node_errors: Mapping[str, Any],
        *,
        status_code: int = 400,
    ):
        self.error = dict(error)
        self.node_errors = dict(node_errors)
        self.status_code = status_code
        super().__init__(self._summary())

    @property
    def error_type(self) -> str:
        return str(self.error.get("type", ""))

    def _summary(self) -> str:
        parts = [f"{self.error.get('type', 'rejected')}: {self.error.get('message', '')}".strip()]
        if self.error.get("details"):
            parts.append(str(self.error["details"]))
        for node_id, info in self.node_errors.items():
            errors = info.get("errors", []) if isinstance(info, Mapping) else []
            reasons = "; ".join(
                f"{e.get('type', '?')} ({e.get('details', '')})"
                for e in errors
                if isinstance(e, Mapping)
            )
            class_type = info.get("class_type", "?") if isinstance(info, Mapping) else "?"
            parts.append(f"node {node_id} [{class_type}]: {reasons}")
        return " | ".join(parts)


class ExecutionFailed(ComfyError):
    """A node raised while the prompt ran (ComfyUI ``execution_error``).

    ``data`` holds the whole message; ``current_inputs`` in it can be megabytes of
    tensor repr, so it is deliberately left out of ``str(exc)``.
    """

    def __init__(self, prompt_id: str, data: Mapping[str, Any]):
        self.prompt_id = prompt_id
        self.data = dict(data)
        self.node_id: str | None = _opt_str(data.get("node_id"))
        self.node_type: str | None = _opt_str(data.get("node_type"))
        self.exception_message: str = str(data.get("exception_message") or "").rstrip("\n")
        self.exception_type: str | None = _opt_str(data.get("exception_type"))
        traceback = data.get("traceback")
        self.traceback: list[str] = (
            [str(x) for x in traceback] if isinstance(traceback, list) else []
        )
        executed = data.get("executed")
        self.executed: list[str] = [str(x) for x in executed] if isinstance(executed, list) else []
        super().__init__(
            f"prompt {prompt_id} failed in node {self.node_id} ({self.node_type}): "
            f"{self.exception_type}: {self.exception_message}"
        )


class ExecutionInterrupted(ComfyError):
    """The prompt was interrupted (``execution_interrupted``), by anyone.

    ``node_id``/``node_type`` name the node that was about to run when the
    interrupt was noticed; ``executed`` lists the nodes that had completed.
    """

    def __init__(self, prompt_id: str, data: Mapping[str, Any] | None = None):
        data = dict(data or {})
        self.prompt_id = prompt_id
        self.data = data
        self.node_id: str | None = _opt_str(data.get("node_id"))
        self.node_type: str | None = _opt_str(data.get("node_type"))
        executed = data.get("executed")
        self.executed: list[str] = [str(x) for x in executed] if isinstance(executed, list) else []
        where = f" at node {self.node_id} ({self.node_type})" if self.node_id else ""
        super().__init__(f"prompt {prompt_id} was interrupted{where}")


class PromptNotFound(ComfyError):
    """The worker has no trace of a submitted prompt: it is in neither /queue nor /history.

    It was deleted from the queue, evicted from the (in-memory) history, or the
    worker restarted and lost it.
    """

    def __init__(self, prompt_id: str):
        self.prompt_id = prompt_id
        super().__init__(f"prompt {prompt_id} is neither queued nor in history")


class JobTimeout(ComfyError):
    """A watched prompt did not reach a terminal state before its deadline.

    The prompt may still be queued or running on the worker.
    """

    def __init__(self, prompt_id: str, timeout: float):
        self.prompt_id = prompt_id
        self.timeout = timeout
        super().__init__(f"prompt {prompt_id} did not finish within {timeout:g} s")


class JobStalled(ComfyError):
    """A running prompt sent nothing and its /queue and /history showed no change for
    ``seconds``: the worker is wedged (socket open, no progress)."""

    def __init__(self, prompt_id: str, seconds: float):
        self.prompt_id = prompt_id
        self.seconds = seconds
        super().__init__(f"prompt {prompt_id} made no progress for {seconds:g} s")


class OutputMissing(ComfyError):
    """An output the caller expected is not on the worker (file gone, no history entry)."""


class ProtocolError(ComfyError):
    """The worker answered with something this client does not understand."""

    def __init__(self, message: str, *, url: str | None = None, status_code: int | None = None):
        super().__init__(message)
        self.url = url
        self.status_code = status_code


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)
