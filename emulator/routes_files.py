"""File routes: GET /view and POST /upload/image, with ComfyUI's path rules and codes.

/view: no filename -> 404, "/"-leading or ".." names -> 400, unknown type -> 400,
subfolder escaping its folder -> 403, missing file -> 404. /upload/image: no file part
-> 400 with an empty body, an unknown `type` -> 500 (ComfyUI crashes there).
"""

from __future__ import annotations

import asyncio
import io
import mimetypes
import os

from PIL import Image
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from comfygraph.emulator.files import UnsafePath, inside, store_upload
from comfygraph.emulator.responses import json_response, server_error, state_of, status_only

_FORCED_DOWNLOAD = {
    "text/html",
    "text/html-sandboxed",
    "application/xhtml+xml",
    "text/javascript",
    "text/css",
}


async def view(request: Request) -> Response:
    state = state_of(request)
    query = request.query_params
    if "filename" not in query:
        return status_only(404)
    name, annotated = state.files.annotated(query["filename"])
    if not name:
        return status_only(400)
    if name[0] == "/" or ".." in name:
        return status_only(400)
    folder = annotated or state.files.by_type(query.get("type", "output"))
    if folder is None:
        return status_only(400)
    if "subfolder" in query:
        try:
            folder = inside(folder, query["subfolder"])
        except UnsafePath:
            return status_only(403)
    name = os.path.basename(name)
    path = folder / name
    if not await asyncio.to_thread(path.is_file):
        return status_only(404)
    disposition = {"Content-Disposition": f'filename="{name}"'}
    if "preview" in query:
        return await asyncio.to_thread(_reencoded, path, query["preview"], disposition)
    channel = query.get("channel", "rgba")
    if channel in ("rgb", "a"):
        return await asyncio.to_thread(_channel, path, channel, disposition)
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if content_type in _FORCED_DOWNLOAD:
        content_type = "application/octet-stream"
    return FileResponse(path, headers=disposition, media_type=content_type)


def _reencoded(path: os.PathLike[str], preview: str, headers: dict[str, str]) -> Response:
    kind, _, quality = preview.partition(";")
    kind = kind if kind in ("webp", "jpeg") else "webp"
    with Image.open(path) as image:
        picture = image.convert("RGB")
    out = io.BytesIO()
    picture.save(out, format=kind.upper(), quality=int(quality) if quality.isdigit() else 90)
    return Response(out.getvalue(), media_type=f"image/{kind}", headers=headers)


def _channel(path: os.PathLike[str], channel: str, headers: dict[str, str]) -> Response:
    with Image.open(path) as image:
        rgba = image.convert("RGBA")
    if channel == "rgb":
        picture = rgba.convert("RGB")
    else:
        alpha = rgba.getchannel("A")
        picture = Image.merge("RGBA", (alpha, alpha, alpha, alpha))
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return Response(out.getvalue(), media_type="image/png", headers=headers)


async def upload_image(request: Request) -> Response:
    state = state_of(request)
    form = await request.form()
    image = form.get("image")
    if not isinstance(image, UploadFile) or not image.filename:
        return status_only(400)
    kind = form.get("type") or "input"
    folder = state.files.by_type(str(kind))
    if folder is None:
        return server_error()
    subfolder = str(form.get("subfolder", "") or "")
    content = await image.read()
    overwrite = form.get("overwrite") in ("true", "1")
    try:
        name = await asyncio.to_thread(
            store_upload, folder, subfolder, image.filename, content, overwrite=overwrite
        )
    except UnsafePath:
        return status_only(400)
    return json_response({"name": name, "subfolder": subfolder, "type": kind})
