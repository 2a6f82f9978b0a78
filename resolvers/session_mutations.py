"""The ad-video session pipeline's mutations. Placeholders until the pipeline
(sessions driving comfy/ jobs) arrives; this module is replaced then."""

from __future__ import annotations

from typing import TYPE_CHECKING

import strawberry

from resolvers.not_implemented import not_implemented
from schema.payloads import CreateSessionInput, DeletePayload, SessionPayload

if TYPE_CHECKING:
    from server.context import Context


async def create_session(
    info: strawberry.Info[Context, None], input: CreateSessionInput
) -> SessionPayload:
    return SessionPayload(user_errors=not_implemented("createSession"))


async def generate_session_images(
    info: strawberry.Info[Context, None], session_id: strawberry.ID
) -> SessionPayload:
    return SessionPayload(user_errors=not_implemented("generateSessionImages"))


async def select_assets(
    info: strawberry.Info[Context, None], session_id: strawberry.ID, asset_ids: list[strawberry.ID]
) -> SessionPayload:
    return SessionPayload(user_errors=not_implemented("selectAssets"))


async def generate_session_clips(
    info: strawberry.Info[Context, None], session_id: strawberry.ID
) -> SessionPayload:
    return SessionPayload(user_errors=not_implemented("generateSessionClips"))


async def compose_session_video(
    info: strawberry.Info[Context, None], session_id: strawberry.ID
) -> SessionPayload:
    return SessionPayload(user_errors=not_implemented("composeSessionVideo"))


async def cancel_session(
    info: strawberry.Info[Context, None], session_id: strawberry.ID
) -> SessionPayload:
    return SessionPayload(user_errors=not_implemented("cancelSession"))


async def delete_session(
    info: strawberry.Info[Context, None], session_id: strawberry.ID
) -> DeletePayload:
    return DeletePayload(user_errors=not_implemented("deleteSession"))
