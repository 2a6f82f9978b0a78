"""The emulator's Starlette app: ComfyUI's routes, each also under /api, plus admin."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from comfygraph.emulator import admin, routes_files, routes_info, routes_prompt
from comfygraph.emulator.faults import Faults
from comfygraph.emulator.files import Files
from comfygraph.emulator.origin import OriginGuard
from comfygraph.emulator.state import EmulatorState
from comfygraph.emulator.ws import websocket_endpoint

Handler = Callable[[Request], Awaitable[Response]]

_COMFY_ROUTES: list[tuple[str, Handler, list[str]]] = [
    ("/prompt", routes_prompt.post_prompt, ["POST"]),
    ("/prompt", routes_prompt.get_prompt, ["GET"]),
    ("/queue", routes_prompt.get_queue, ["GET"]),
    ("/queue", routes_prompt.post_queue, ["POST"]),
    ("/interrupt", routes_prompt.post_interrupt, ["POST"]),
    ("/history", routes_prompt.get_history, ["GET"]),
    ("/history", routes_prompt.post_history, ["POST"]),
    ("/history/{prompt_id}", routes_prompt.get_history_item, ["GET"]),
    ("/free", routes_prompt.post_free, ["POST"]),
    ("/view", routes_files.view, ["GET"]),
    ("/upload/image", routes_files.upload_image, ["POST"]),
    ("/system_stats", routes_info.system_stats, ["GET"]),
    ("/object_info", routes_info.object_info, ["GET"]),
    ("/object_info/{node_class}", routes_info.object_info_one, ["GET"]),
    ("/features", routes_info.features, ["GET"]),
    ("/embeddings", routes_info.embeddings, ["GET"]),
    ("/extensions", routes_info.extensions, ["GET"]),
    ("/models", routes_info.models, ["GET"]),
    ("/models/{folder}", routes_info.models_in, ["GET"]),
]
MAX_UPLOAD_BYTES = 100 * 1024 * 1024  # ComfyUI's default --max-upload-size


def _routes() -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    for prefix in ("", "/api"):  # ComfyUI registers every route twice
        routes += [
            Route(prefix + path, handler, methods=methods)
            for path, handler, methods in _COMFY_ROUTES
        ]
        routes.append(WebSocketRoute(prefix + "/ws", websocket_endpoint))
    routes.append(Route("/emulator/faults", admin.post_faults, methods=["POST"]))
    routes.append(Route("/emulator/faults", admin.get_faults, methods=["GET"]))
    return routes


def create_emulator_app(
    *,
    speed: float = 1.0,
    fail_rate: float = 0.0,
    output_dir: Path | None = None,
    seed: int | None = None,
    missing_nodes: Iterable[str] = (),
    missing_models: Iterable[str] = (),
) -> Starlette:
    """A ComfyUI-protocol emulator. Output files go to `output_dir` (a temporary folder,
    removed at shutdown, when None); uploads and previews live in a private temp folder.
    `missing_nodes` / `missing_models`: class types and model files this worker lacks."""
    if speed <= 0:
        raise ValueError("speed must be positive")
    if not 0.0 <= fail_rate <= 1.0:
        raise ValueError("fail_rate must be between 0 and 1")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        scratch = Path(tempfile.mkdtemp(prefix="comfy-emulator-"))
        files = Files(
            output=output_dir or scratch / "output", input=scratch / "input", temp=scratch / "temp"
        )
        state = EmulatorState(
            files=files,
            faults=Faults(speed=speed, fail_rate=fail_rate, seed=seed),
            missing_nodes=tuple(missing_nodes),
            missing_models=tuple(missing_models),
        )
        app.state.emulator = state
        await state.start()
        try:
            yield
        finally:
            await state.stop()
            shutil.rmtree(scratch, ignore_errors=True)

    return Starlette(
        routes=_routes(),
        middleware=[Middleware(OriginGuard)],
        lifespan=lifespan,
        max_body_size=MAX_UPLOAD_BYTES,
    )


def run_emulator(
    host: str,
    port: int,
    *,
    speed: float,
    fail_rate: float,
    output_dir: Path | None = None,
    seed: int | None = None,
) -> None:
    """Serve the emulator with uvicorn until interrupted (`comfygraph emulator`)."""
    app = create_emulator_app(speed=speed, fail_rate=fail_rate, output_dir=output_dir, seed=seed)
    uvicorn.run(app, host=host, port=port, log_level="info")
