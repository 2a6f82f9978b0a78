"""Information routes: /system_stats, /object_info, /features, /models, /embeddings.

/system_stats keeps ComfyUI 0.8.0's keys but never claims a GPU: the single device is
named "emulator" with type "cpu", and pytorch_version says there is no torch at all.
"""

from __future__ import annotations

import os
import sys

from starlette.requests import Request
from starlette.responses import Response

from comfygraph.emulator.responses import json_response, state_of, status_only
from comfygraph.emulator.ws import SERVER_FEATURES

COMFYUI_VERSION = "0.8.0"


def _memory() -> tuple[int, int]:
    try:
        page = os.sysconf("SC_PAGE_SIZE")
        return page * os.sysconf("SC_PHYS_PAGES"), page * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system
        return 0, 0


async def system_stats(request: Request) -> Response:
    total, free = _memory()
    return json_response(
        {
            "system": {
                "os": sys.platform,
                "ram_total": total,
                "ram_free": free,
                "comfyui_version": COMFYUI_VERSION,
                "required_frontend_version": "1.35.9",
                "installed_templates_version": "0.7.67",
                "required_templates_version": "0.7.67",
                "python_version": sys.version,
                "pytorch_version": "none (comfygraph emulator)",
                "embedded_python": False,
                "argv": list(sys.argv),
            },
            "devices": state_of(request).faults.devices
            or [
                {
                    "name": "emulator",
                    "type": "cpu",
                    "index": None,
                    "vram_total": total,
                    "vram_free": free,
                    "torch_vram_total": total,
                    "torch_vram_free": free,
                }
            ],
        }
    )


async def object_info(request: Request) -> Response:
    state = state_of(request)
    return json_response({name: node.info(state.files) for name, node in state.registry.items()})


async def object_info_one(request: Request) -> Response:
    state = state_of(request)
    node = state.registry.get(request.path_params["node_class"])
    return json_response({node.class_type: node.info(state.files)} if node else {})


async def features(request: Request) -> Response:
    return json_response(SERVER_FEATURES)


async def embeddings(request: Request) -> Response:
    return json_response([])


async def extensions(request: Request) -> Response:
    return json_response([])


async def models(request: Request) -> Response:
    return json_response(list(state_of(request).models))


async def models_in(request: Request) -> Response:
    folder = request.path_params["folder"]
    models = state_of(request).models
    if folder not in models:
        return status_only(404)
    return json_response(models[folder])
