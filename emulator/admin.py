"""POST /emulator/faults (and GET for the current state): the test harness's switches.

See the package docstring for the JSON actions. Never aliased under /api: it is not
part of ComfyUI.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from comfygraph.emulator.faults import DEFAULT_FAILURE, Rule
from comfygraph.emulator.responses import json_response, state_of
from comfygraph.emulator.state import EmulatorState


class BadRequest(ValueError):
    pass


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"{key} must be a string")
    return value


def _names(body: dict[str, Any], key: str) -> tuple[str, ...]:
    value = body.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(f"{key} must be a list of strings")
    return tuple(value)


def _number(body: dict[str, Any], key: str, lo: float, hi: float) -> float:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise BadRequest(f"{key} must be a number in [{lo}, {hi}]")
    return float(value)


async def _apply(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    action = body.get("action")
    if action in ("fail", "stall"):
        times = body.get("times", 1)
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise BadRequest("times must be a positive integer")
        rule = Rule(
            action, _optional_str(body, "class_type"), _optional_str(body, "node_id"), times
        )
        if action == "fail":
            rule.message = _optional_str(body, "message") or DEFAULT_FAILURE
            rule.exception_type = _optional_str(body, "exception_type") or "RuntimeError"
        state.faults.add(rule)
        return {}
    if action == "release":
        return {"released": state.faults.release()}
    if action == "drop_websockets":
        return {"dropped": state.hub.drop_all()}
    if action == "restart":
        install = None
        if "missing_nodes" in body or "missing_models" in body:
            install = (_names(body, "missing_nodes"), _names(body, "missing_models"))
        await state.restart(install)
        return {}
    if action == "model_load":
        state.faults.model_load_seconds = _number(body, "seconds", 0.0, 600.0)
        return {}
    if action == "devices":
        devices = body.get("devices")
        if devices is not None and not isinstance(devices, list):
            raise BadRequest("devices must be a list (or null for the real one)")
        state.faults.devices = devices
        return {}
    if action == "speed":
        state.faults.speed = _number(body, "speed", 1e-3, 1e6)
        return {}
    if action == "fail_rate":
        state.faults.fail_rate = _number(body, "fail_rate", 0.0, 1.0)
        return {}
    if action == "clear":
        state.faults.clear()
        return {}
    raise BadRequest(f"unknown action: {action!r}")


async def post_faults(request: Request) -> Response:
    state = state_of(request)
    try:
        body = json.loads(await request.body())
        if not isinstance(body, dict):
            raise BadRequest("body must be a JSON object")
        result = await _apply(state, body)
    except (BadRequest, json.JSONDecodeError) as exc:
        return json_response({"error": str(exc)}, 400)
    return json_response({**result, **state.faults.describe()})


async def get_faults(request: Request) -> Response:
    return json_response(state_of(request).faults.describe())
