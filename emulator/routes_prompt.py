"""Job routes: /prompt, /queue, /interrupt, /history, /free (ComfyUI server.py)."""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from comfygraph.emulator.responses import json_response, ok_empty, server_error, state_of
from comfygraph.emulator.validation import validate_prompt

log = logging.getLogger("comfygraph.emulator")

SENSITIVE_EXTRA_DATA_KEYS = ("auth_token_comfy_org", "api_key_comfy_org")


async def _json_body(request: Request) -> Any:
    """The parsed body; a malformed one raises, which the caller turns into a 500."""
    return json.loads(await request.body())


async def post_prompt(request: Request) -> Response:
    state = state_of(request)
    try:
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise TypeError("body is not an object")
        if "number" in body:
            number: float | int = float(body["number"])
        else:
            number = state.next_number(front=bool(body.get("front")))
        if "prompt" not in body:
            error = {
                "type": "no_prompt",
                "message": "No prompt provided",
                "details": "No prompt provided",
                "extra_info": {},
            }
            return json_response({"error": error, "node_errors": {}}, 400)
        prompt = body["prompt"]
        if not isinstance(prompt, dict):
            raise TypeError("prompt is not an object")  # ComfyUI fails indexing it: 500
        prompt_id = str(body.get("prompt_id", uuid.uuid4()))
        targets = body.get("partial_execution_targets")
        verdict = validate_prompt(prompt, state.registry, state.files, targets)
        extra_data = dict(body.get("extra_data") or {})
        if "client_id" in body:
            extra_data["client_id"] = body["client_id"]
    except Exception:
        log.exception("POST /prompt failed")
        return server_error()
    if not verdict.ok:
        return json_response({"error": verdict.error, "node_errors": verdict.node_errors}, 400)
    for key in SENSITIVE_EXTRA_DATA_KEYS:
        extra_data.pop(key, None)
    extra_data["create_time"] = int(time.time() * 1000)
    state.queue.put([number, prompt_id, prompt, extra_data, verdict.outputs])
    return json_response(
        {"prompt_id": prompt_id, "number": number, "node_errors": verdict.node_errors}
    )


async def get_prompt(request: Request) -> Response:
    return json_response(state_of(request).queue.info())


async def get_queue(request: Request) -> Response:
    queue = state_of(request).queue
    return json_response({"queue_running": queue.running(), "queue_pending": queue.pending()})


async def post_queue(request: Request) -> Response:
    queue = state_of(request).queue
    try:
        body = await _json_body(request)
        if body.get("clear"):
            queue.wipe()
        for prompt_id in body.get("delete", []):
            queue.delete(prompt_id)
    except Exception:
        return server_error()
    return ok_empty()


async def post_interrupt(request: Request) -> Response:
    state = state_of(request)
    try:
        body = await _json_body(request)
    except ValueError:
        body = {}
    try:
        prompt_id = body.get("prompt_id")
    except AttributeError:
        return server_error()
    if prompt_id:
        # Only the running prompt can be interrupted; a pending id is a silent no-op.
        if any(item[1] == prompt_id for item in state.queue.running()):
            state.executor.interrupt.set()
        else:
            log.info("Prompt %s is not currently running, skipping interrupt", prompt_id)
    else:
        state.executor.interrupt.set()
    return ok_empty()


async def get_history(request: Request) -> Response:
    query = request.query_params
    try:
        max_items = int(query["max_items"]) if "max_items" in query else None
        offset = int(query["offset"]) if "offset" in query else -1
    except ValueError:
        return server_error()
    return json_response(state_of(request).queue.get_history(max_items=max_items, offset=offset))


async def get_history_item(request: Request) -> Response:
    return json_response(state_of(request).queue.get_history(request.path_params["prompt_id"]))


async def post_history(request: Request) -> Response:
    queue = state_of(request).queue
    try:
        body = await _json_body(request)
        if body.get("clear"):
            queue.history.clear()
        for prompt_id in body.get("delete", []):
            queue.history.pop(prompt_id, None)
    except Exception:
        return server_error()
    return ok_empty()


async def post_free(request: Request) -> Response:
    state = state_of(request)
    try:
        body = await _json_body(request)
    except ValueError:
        return server_error()
    if isinstance(body, dict) and (body.get("free_memory") or body.get("unload_models")):
        state.cache.clear()
    return ok_empty()
