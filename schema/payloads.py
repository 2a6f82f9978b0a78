"""Mutation inputs and payloads. Expected failures travel as `userErrors`."""

from __future__ import annotations

import strawberry

from comfygraph.schema.enums import ProductCategory
from comfygraph.schema.errors import UserError
from comfygraph.schema.jobs import GenerationJob
from comfygraph.schema.scalars import JSON
from comfygraph.schema.sessions import Session
from comfygraph.schema.users import User


@strawberry.input
class SubmitJobInput:
    workflow_name: str
    parameters: JSON = strawberry.field(
        description="Values for the workflow's parameters (see Query.workflows)."
    )
    public: bool | None = False
    idempotency_key: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="A retried submit with the same key (for the same user) returns the first "
        "job instead of a new one.",
    )
    session_id: strawberry.ID | None = strawberry.UNSET
    priority: int | None = 0
    webhook_url: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="Also POST this job's job.* events here (signed with Me.webhookSecret).",
    )
    count: int | None = strawberry.field(
        default=1,
        description="Create this many jobs (up to MAX_BATCH_COUNT), each with its own seeds "
        "(SEED parameters: the given seed + i, or random), sharing one batchId.",
    )


@strawberry.input
class CreateSessionInput:
    user_product_prompt: str
    user_video_prompt: str | None = strawberry.UNSET
    product_category: ProductCategory | None = strawberry.UNSET
    num_images_requested: int | None = 6
    clip_duration_seconds: float | None = 3.0
    consistency_seed: int | None = strawberry.UNSET
    style_keywords: list[str] | None = strawberry.UNSET
    product_name: str | None = strawberry.UNSET
    call_to_action: str | None = strawberry.UNSET
    text_color: str | None = strawberry.UNSET
    text_font: str | None = strawberry.UNSET
    background_music_enabled: bool | None = False
    music_genre: str | None = strawberry.UNSET
    music_url: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="An uploaded AUDIO file (uploadFile's url): the final video's music when "
        "backgroundMusicEnabled.",
    )


@strawberry.type
class SubmitJobPayload:
    # The interface, not the feed's union: `job { id status }` needs no fragment, and
    # fragments on ImageJob etc. stay valid (every member of Job implements it).
    job: GenerationJob | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)
    jobs: list[GenerationJob] = strawberry.field(
        default_factory=list, description="Every job created (count of them), in order."
    )
    batch_id: strawberry.ID | None = None


@strawberry.type
class JobPayload:
    job: GenerationJob | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class DeletePayload:
    deleted_id: strawberry.ID | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class UploadPayload:
    url: str | None = None
    name: str | None = None
    content_type: str | None = None
    size_bytes: float | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class SessionPayload:
    session: Session | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class AuthPayload:
    token: str | None = None
    user: User | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)
