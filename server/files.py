"""GET /files/{key}: a stored file, for whoever holds a valid signed URL of it.

The signature and its expiry are checked, then the grant it carries (studio/files.py)
against the database: a file whose job was deleted or made private since the URL was
handed out answers 404, like a forged or expired URL and a missing object (nothing tells
which). Local files are sent from here with Range support; on S3 the answer is a
redirect to a presigned URL valid S3_PRESIGN_SECONDS.

Every answer carries `X-Content-Type-Options: nosniff`; the Content-Type is sniffed from
the bytes, and only image, video and audio types are `inline`: anything else is an
`attachment` of type application/octet-stream.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response

from comfygraph.server.state import AppState
from comfygraph.storage import LocalStorage
from comfygraph.studio.files import still_visible
from comfygraph.studio.sniff import sniff

SNIFF_BYTES = 8 * 1024
NOSNIFF = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=300"}


def _head(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(SNIFF_BYTES)


def _not_found() -> Response:
    return PlainTextResponse("not found", status_code=404, headers=NOSNIFF)


async def files_endpoint(request: Request) -> Response:
    state: AppState = request.app.state.comfygraph
    services = state.services
    signed = services.files.verify(request.path_params["path"], request.query_params)
    if signed is None:
        return _not_found()
    async with services.pool.acquire() as conn:
        if not await still_visible(conn, signed):
            return _not_found()
    storage = services.storage
    info = await storage.head(signed.key)
    if info is None:
        return _not_found()
    name = signed.key.rsplit("/", 1)[-1]
    if isinstance(storage, LocalStorage):
        path = storage.path_for(signed.key)
        kind = sniff(await asyncio.to_thread(_head, path))
        media_type = kind.mime if kind is not None else "application/octet-stream"
        disposition = "inline" if kind is not None and kind.inline else "attachment"
        return FileResponse(
            path,
            media_type=media_type,
            headers=NOSNIFF,
            filename=name,
            content_disposition_type=disposition,
        )
    presigned = await storage.presign(signed.key, state.settings.s3_presign_seconds)
    if presigned is None:
        return _not_found()
    return RedirectResponse(presigned, status_code=307, headers=NOSNIFF)
