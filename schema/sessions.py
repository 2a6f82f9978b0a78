"""Ad-video sessions (seed 004): Session, its Assets and cost lines, and the
SessionEvent union that sessionProgress streams."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from comfygraph.schema.enums import AssetStatus, AssetType, ProductCategory, SessionStatus
from comfygraph.schema.files import signed
from comfygraph.schema.jobs import Job
from comfygraph.schema.node import Node
from comfygraph.schema.pagination import Connection
from comfygraph.schema.scalars import JSON
from comfygraph.schema.users import User

if TYPE_CHECKING:
    from comfygraph.resolvers.context import Context

FINAL_VIDEO_STATES = (AssetStatus.APPROVED, AssetStatus.COMPLETED)


@strawberry.type
class CostLine:
    category: str
    provider: str | None
    api_calls: int
    total_cost: float
    avg_latency_ms: float | None


@strawberry.type
class Session(Node):
    id: strawberry.ID
    status: SessionStatus
    current_stage: str | None
    progress_percentage: int = strawberry.field(
        description="0..100 over the whole pipeline; never decreases while the session is active."
    )
    product_category: ProductCategory | None
    user_product_prompt: str | None
    user_video_prompt: str | None
    consistency_seed: int | None
    style_keywords: list[str]
    product_name: str | None
    call_to_action: str | None
    text_color: str | None
    text_font: str | None
    background_music_enabled: bool
    music_genre: str | None
    music_url: str | None
    num_images_requested: int
    clip_duration_seconds: float
    total_cost: float
    estimated_cost: float | None
    error_message: str | None
    retry_count: int
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    metadata: JSON
    uid: strawberry.Private[uuid.UUID]
    user_id: strawberry.Private[uuid.UUID]
    final_video_id: strawberry.Private[uuid.UUID | None]

    @strawberry.field(
        description="The same as `status`, under a name no Asset field shares: "
        "`... on Session { sessionStatus } ... on Asset { assetStatus }` in sessionProgress "
        "needs no alias (two `status` fields of different enums do not validate)."
    )
    def session_status(self) -> SessionStatus:
        return self.status

    @strawberry.field
    async def owner(self, info: strawberry.Info[Context, None]) -> User | None:
        return await info.context.loaders.users.load(self.user_id)

    @strawberry.field
    async def assets(
        self,
        info: strawberry.Info[Context, None],
        type: AssetType | None = strawberry.UNSET,
        status: AssetStatus | None = strawberry.UNSET,
    ) -> list[Asset]:
        everything = await info.context.loaders.session_assets.load(self.uid)
        return [
            asset
            for asset in everything
            if (not type or asset.type is type) and (not status or asset.status is status)
        ]

    @strawberry.field(description="Assets the user selected, in selection order.")
    async def mood_board(self, info: strawberry.Info[Context, None]) -> list[Asset]:
        everything = await info.context.loaders.session_assets.load(self.uid)
        chosen = [a for a in everything if a.user_selected]
        return sorted(chosen, key=lambda a: (a.selection_order is None, a.selection_order or 0))

    @strawberry.field
    async def final_video(self, info: strawberry.Info[Context, None]) -> Asset | None:
        if self.final_video_id is not None:
            return await info.context.loaders.assets.load(self.final_video_id)
        everything = await info.context.loaders.session_assets.load(self.uid)
        finals = [
            a
            for a in everything
            if a.type is AssetType.FINAL_VIDEO and a.status in FINAL_VIDEO_STATES
        ]
        return finals[-1] if finals else None

    @strawberry.field
    async def jobs(
        self,
        info: strawberry.Info[Context, None],
        first: int | None = 20,
        after: str | None = strawberry.UNSET,
    ) -> Connection[Job]:
        return await info.context.feeds.session_jobs(
            self.uid, first=first, after=None if after is strawberry.UNSET else after
        )

    @strawberry.field
    async def cost_breakdown(self, info: strawberry.Info[Context, None]) -> list[CostLine]:
        return await info.context.loaders.cost_breakdowns.load(self.uid)


@strawberry.type
class Asset(Node):
    id: strawberry.ID
    type: AssetType
    source: str
    status: AssetStatus
    url: str | None = signed()
    storage_path: str | None
    file_size_bytes: float | None
    mime_type: str | None
    resolution: str | None
    duration_seconds: float | None
    fps: int | None
    generation_cost: float
    generation_time_seconds: float | None
    model_version: str | None
    view_type: str | None
    seed: int | None
    guidance_scale: float | None
    scene_prompt: str | None
    camera_movement: str | None
    motion_intensity: float | None
    generation_prompt: str | None
    negative_prompt: str | None
    user_selected: bool
    selection_order: int | None
    created_at: datetime
    metadata: JSON
    uid: strawberry.Private[uuid.UUID]
    session_id: strawberry.Private[uuid.UUID]
    source_image_id: strawberry.Private[uuid.UUID | None]
    job_ref: strawberry.Private[tuple[str, uuid.UUID] | None]

    @strawberry.field(
        description="The same as `status`, under a name no Session field shares (see "
        "Session.sessionStatus)."
    )
    def asset_status(self) -> AssetStatus:
        return self.status

    @strawberry.field
    async def session(self, info: strawberry.Info[Context, None]) -> Session:
        session = await info.context.loaders.sessions.load(self.session_id)
        assert session is not None  # an asset is visible only through its visible session
        return session

    @strawberry.field(description="For a video clip: the image it was generated from.")
    async def source_image(self, info: strawberry.Info[Context, None]) -> Asset | None:
        if self.source_image_id is None:
            return None
        return await info.context.loaders.assets.load(self.source_image_id)

    @strawberry.field(description="The generation job that produced this asset, if any.")
    async def job(self, info: strawberry.Info[Context, None]) -> Job | None:
        if self.job_ref is None:
            return None
        return await info.context.loaders.jobs.load(self.job_ref)


SessionEvent = Annotated[
    Session | Asset,
    strawberry.union(
        "SessionEvent",
        description="What sessionProgress streams: the session's new state, or an asset that "
        "appeared or changed.",
    ),
]
