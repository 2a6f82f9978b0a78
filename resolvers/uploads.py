"""uploadFile. Placeholder until storage (server/) arrives; replaced then."""

from __future__ import annotations

from typing import TYPE_CHECKING

import strawberry

from resolvers.not_implemented import not_implemented
from schema.payloads import UploadPayload
from schema.scalars import Upload

if TYPE_CHECKING:
    from server.context import Context


async def upload_file(info: strawberry.Info[Context, None], file: Upload) -> UploadPayload:
    return UploadPayload(user_errors=not_implemented("uploadFile"))
