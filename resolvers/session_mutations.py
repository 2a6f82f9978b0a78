"""The ad-video session pipeline's mutations: check the viewer, decode ids, call
studio.sessions.SessionPipeline, map the result. Sessions are private: a session the
viewer may not change is NOT_FOUND, exactly as one that does not exist.

userErrors codes: NOT_FOUND, INVALID_ID, INVALID_STATE (the mutation does not apply in
the session's status), NOTHING_APPROVED, EMPTY_SELECTION, DUPLICATE_ASSET, MIXED_STAGES,
NOT_SELECTABLE; QUOTA_EXCEEDED (the viewer's storage quota is used up: createSession and
the generating steps queue nothing); createSession's field codes are comfy.sessions.inputs'.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import strawberry

from comfygraph.db.visibility import Viewer
from comfygraph.resolvers.args import given
from comfygraph.resolvers.mapping import session_from_row
from comfygraph.schema.errors import ApiError, UserError, unauthenticated, user_error
from comfygraph.schema.node import from_global_id
from comfygraph.schema.payloads import CreateSessionInput, DeletePayload, SessionPayload
from comfygraph.studio.quota import QUOTA_EXCEEDED, exceeded_message
from comfygraph.studio.quota import remaining as quota_left
from comfygraph.studio.sessions import Outcome, SessionPipeline, SessionSpec

if TYPE_CHECKING:
    from comfygraph.resolvers.context import Context


def _pipeline(ctx: Context) -> tuple[SessionPipeline, Viewer]:
    if ctx.viewer.anonymous:
        raise unauthenticated()
    return ctx.services.sessions(), ctx.viewer


def _decode(value: str, type_name: str, *path: str) -> uuid.UUID | UserError:
    try:
        return from_global_id(value, expect=frozenset({type_name}))[1]
    except ApiError as exc:
        return user_error(exc.code, exc.message, path)


def _payload(outcome: Outcome) -> SessionPayload:
    errors = [user_error(p.code, p.message, p.path) for p in outcome.problems]
    session = session_from_row(outcome.session) if outcome.session is not None else None
    return SessionPayload(session=session if not errors else None, user_errors=errors)


async def _over_quota(ctx: Context, viewer: Viewer, field: str) -> SessionPayload | None:
    """QUOTA_EXCEEDED before a step queues jobs for a user whose storage is used up."""
    assert viewer.user_id is not None
    if await quota_left(ctx.pool, viewer.user_id, ctx.limits.storage_quota_bytes) != 0:
        return None
    return SessionPayload(user_errors=[user_error(QUOTA_EXCEEDED, exceeded_message(0), [field])])


async def _run(
    info: strawberry.Info[Context, None],
    session_id: strawberry.ID,
    step: Callable[[SessionPipeline, Viewer, uuid.UUID], Awaitable[Outcome]],
    *,
    queues: bool = True,
) -> SessionPayload:
    pipeline, viewer = _pipeline(info.context)
    if queues and (refused := await _over_quota(info.context, viewer, "sessionId")):
        return refused
    sid = _decode(session_id, "Session", "sessionId")
    if isinstance(sid, UserError):
        return SessionPayload(user_errors=[sid])
    return _payload(await step(pipeline, viewer, sid))


async def create_session(
    info: strawberry.Info[Context, None], input: CreateSessionInput
) -> SessionPayload:
    pipeline, viewer = _pipeline(info.context)
    if refused := await _over_quota(info.context, viewer, "input"):
        return refused
    category = given(input.product_category)
    spec = SessionSpec(
        user_product_prompt=input.user_product_prompt,
        user_video_prompt=given(input.user_video_prompt),
        product_category=category.value if category is not None else None,
        num_images_requested=given(input.num_images_requested),
        clip_duration_seconds=given(input.clip_duration_seconds),
        consistency_seed=given(input.consistency_seed),
        style_keywords=given(input.style_keywords),
        product_name=given(input.product_name),
        call_to_action=given(input.call_to_action),
        text_color=given(input.text_color),
        text_font=given(input.text_font),
        background_music_enabled=given(input.background_music_enabled),
        music_genre=given(input.music_genre),
        music_url=given(input.music_url),
    )
    return _payload(await pipeline.create(viewer, spec))


async def generate_session_images(
    info: strawberry.Info[Context, None], session_id: strawberry.ID
) -> SessionPayload:
    return await _run(info, session_id, SessionPipeline.generate_images)


async def select_assets(
    info: strawberry.Info[Context, None], session_id: strawberry.ID, asset_ids: list[strawberry.ID]
) -> SessionPayload:
    decoded = [_decode(a, "Asset", "assetIds", str(i)) for i, a in enumerate(asset_ids)]
    errors = [d for d in decoded if isinstance(d, UserError)]
    if errors:
        _pipeline(info.context)  # still UNAUTHENTICATED first for an anonymous viewer
        return SessionPayload(user_errors=errors)
    ids = [d for d in decoded if isinstance(d, uuid.UUID)]
    return await _run(info, session_id, lambda p, v, s: p.select(v, s, ids), queues=False)


async def generate_session_clips(
    info: strawberry.Info[Context, None], session_id: strawberry.ID
) -> SessionPayload:
    return await _run(info, session_id, SessionPipeline.generate_clips)


async def compose_session_video(
    info: strawberry.Info[Context, None], session_id: strawberry.ID
) -> SessionPayload:
    return await _run(info, session_id, SessionPipeline.compose)


async def cancel_session(
    info: strawberry.Info[Context, None], session_id: strawberry.ID
) -> SessionPayload:
    return await _run(info, session_id, SessionPipeline.cancel, queues=False)


async def delete_session(
    info: strawberry.Info[Context, None], session_id: strawberry.ID
) -> DeletePayload:
    result = await _run(info, session_id, SessionPipeline.delete, queues=False)
    if result.user_errors:
        return DeletePayload(user_errors=result.user_errors)
    return DeletePayload(deleted_id=session_id)
