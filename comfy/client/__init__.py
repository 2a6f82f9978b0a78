"""Async client of real ComfyUI workers.

- :mod:`.client`: :class:`ComfyClient`, the HTTP routes and the entry points.
- :mod:`.stream`: the one websocket per client id, reconnecting, fanned out.
- :mod:`.job`: following one prompt to its outcome (events, then /history).

Typical use::

    async with ComfyClient("http://gpu-3:8188") as comfy:
        result = await comfy.run_prompt(graph, prompt_id=job_id, timeout=600)
        for file in result.files:
            data = await comfy.view(file.filename, file.subfolder, file.type)
"""

from .client import ComfyClient, EventStream, SubmitResult, new_prompt_id
from .job import Job, JobEvent, PromptResult
from .stream import Lagged, Reconnected, StreamItem

__all__ = [
    "ComfyClient",
    "EventStream",
    "Job",
    "JobEvent",
    "Lagged",
    "PromptResult",
    "Reconnected",
    "StreamItem",
    "SubmitResult",
    "new_prompt_id",
]
