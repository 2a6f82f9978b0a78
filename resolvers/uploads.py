"""uploadFile: store an input file for a later submitJob (server.uploads does the work).

userErrors (field ["file"]): NOT_A_FILE (no multipart file part), EMPTY_FILE,
FILE_TOO_LARGE (over MAX_UPLOAD_BYTES), UNSUPPORTED_FILE_TYPE (the bytes are none of
PNG, JPEG, WebP, GIF, WAV, FLAC, MP3, OGG, MP4, MOV, WebM; the declared type is ignored),
UNSAFE_FILE (HTML or script inside the media: a polyglot).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import strawberry

from comfygraph.schema.errors import rate_limited, unauthenticated, user_error
from comfygraph.schema.payloads import UploadPayload
from comfygraph.schema.scalars import Upload
from comfygraph.studio.files import Grant
from comfygraph.studio.uploads import UploadRejected, store_upload

if TYPE_CHECKING:
    from comfygraph.resolvers.context import Context


async def upload_file(info: strawberry.Info[Context, None], file: Upload) -> UploadPayload:
    ctx = info.context
    if ctx.viewer.user_id is None:
        raise unauthenticated()
    limit = ctx.limits.max_upload_bytes
    if ctx.rates is not None:
        limited = await ctx.rates.upload(ctx.pool, ctx.viewer, getattr(file, "size", None))
        if limited is not None:
            return UploadPayload(user_errors=[rate_limited(*limited)])
    try:
        stored = await store_upload(
            ctx.services.storage, file, owner=ctx.viewer.user_id, limit=limit
        )
    except UploadRejected as exc:
        return UploadPayload(user_errors=[user_error(exc.code, exc.message, ["file"])])
    return UploadPayload(
        url=ctx.services.files.sign(stored.url, Grant.owner(ctx.viewer.user_id), ctx.viewer),
        name=stored.name,
        content_type=stored.content_type,
        size_bytes=stored.size,
    )
