"""uploadFile: store an input file for a later submitJob (server.uploads does the work).

userErrors (field ["file"]): NOT_A_FILE (no multipart file part), EMPTY_FILE,
FILE_TOO_LARGE (over MAX_UPLOAD_BYTES), UNSUPPORTED_FILE_TYPE (the bytes are none of
PNG, JPEG, WebP, GIF, WAV, FLAC, MP3, OGG, MP4, MOV, WebM; the declared type is ignored),
UNSAFE_FILE (HTML or script inside the media: a polyglot), QUOTA_EXCEEDED (the file
would take the owner past their storage quota; nothing is stored).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import strawberry

from comfygraph.schema.errors import rate_limited, unauthenticated, user_error
from comfygraph.schema.payloads import UploadPayload
from comfygraph.schema.scalars import Upload
from comfygraph.studio.files import Grant
from comfygraph.studio.quota import QUOTA_EXCEEDED, exceeded_message, note_upload
from comfygraph.studio.quota import remaining as quota_left
from comfygraph.studio.uploads import FILE_TOO_LARGE, UploadRejected, store_upload

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
    left = await quota_left(ctx.pool, ctx.viewer.user_id, ctx.limits.storage_quota_bytes)
    if left == 0:
        return UploadPayload(
            user_errors=[user_error(QUOTA_EXCEEDED, exceeded_message(0), ["file"])]
        )
    try:
        stored = await store_upload(
            ctx.services.storage,
            file,
            owner=ctx.viewer.user_id,
            limit=limit if left is None else min(limit, left),
        )
    except UploadRejected as exc:
        if exc.code == FILE_TOO_LARGE and left is not None and left < limit:
            exc = UploadRejected(QUOTA_EXCEEDED, exceeded_message(left))
        return UploadPayload(user_errors=[user_error(exc.code, exc.message, ["file"])])
    await note_upload(ctx.pool, ctx.services.storage, stored.url, ctx.viewer.user_id, stored.size)
    return UploadPayload(
        url=ctx.services.files.sign(stored.url, Grant.owner(ctx.viewer.user_id), ctx.viewer),
        name=stored.name,
        content_type=stored.content_type,
        size_bytes=stored.size,
    )
