"""A ComfyUI 0.8.0 protocol emulator for development and tests.

`create_emulator_app()` returns a Starlette app that speaks ComfyUI's HTTP and websocket
protocol (see docs/comfyui-protocol.md and the recorded traces in
tests/data/comfy/traces): POST/GET /prompt, /queue, /interrupt, /history, /view,
/upload/image, /system_stats, /object_info, /features, /models, /free and WS /ws, each
also under /api. It runs one prompt at a time, caches node outputs like ComfyUI, really
executes the model-free core nodes with Pillow and simulates model nodes (time, progress,
previews, real PNG / animated WebP / WAV / text outputs). It never claims a GPU:
/system_stats reports one device named "emulator" of type "cpu".

Admin route (not part of ComfyUI, not under /api): ``POST /emulator/faults`` with one
JSON object; the reply is the fault state (``GET /emulator/faults`` returns it too)::

    {"action": "fail",  "class_type": "KSampler", "node_id": "3", "times": 1,
     "message": "CUDA out of memory", "exception_type": "torch.OutOfMemoryError"}
        # the next matching node raises -> execution_error (all keys but action optional;
        # class_type / node_id narrow the match, omitted = any node)
    {"action": "stall", "class_type": "...", "node_id": "...", "times": 1}
        # the next matching node waits until "release" or an interrupt; a node with a
        # progress bar is then interrupted at its next tick, a core node finishes first
    {"action": "release"}                  # let every stalled node go on
    {"action": "drop_websockets"}          # close every socket (code 1001)
    {"action": "restart"}                  # forget queue, history, running prompt, caches,
                                           # rules and loaded models; drop sockets (1012);
                                           # counter to 0. With "missing_nodes": [...] and/or
                                           # "missing_models": [...] it comes back without
                                           # them (a worker whose node packs changed)
    {"action": "model_load", "seconds": 2}  # a loader whose model differs from the one its
                                           # class holds waits this long (wall seconds);
                                           # the reply counts "model_loads"; 0 = off
    {"action": "devices", "devices": [...]}  # /system_stats answers these devices (null:
                                           # the real one), e.g. a malformed list
    {"action": "speed", "speed": 50}       # simulated time is divided by speed
    {"action": "fail_rate", "fail_rate": 0.2}  # chance that a simulated node raises
    {"action": "clear"}                    # forget pending fail/stall rules

``create_emulator_app(missing_nodes=..., missing_models=...)`` starts a worker without
some node classes or model files (absent from /object_info, loader choices, /models).

Reply: ``{"speed", "fail_rate", "rules": [...], "stalled": [node ids], "model_load_seconds",
"model_loads"}`` plus
``released`` / ``dropped`` counts for those actions; 400 ``{"error"}`` on a bad request.
"""

from comfygraph.emulator.app import create_emulator_app, run_emulator

__all__ = ["create_emulator_app", "run_emulator"]
