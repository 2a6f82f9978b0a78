"""Generation jobs: the GenerationJob interface, one type per output table, the Job
union of the unified feed, what a job produced (JobOutput), and the feed filter.

Columns are plain dataclass attributes (filled once from the row); only fields that
need another query are resolvers, and those go through the request's DataLoaders.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from comfygraph.schema.enums import JobStatus, OutputKind, OutputType, Scope
from comfygraph.schema.files import signed
from comfygraph.schema.node import Node
from comfygraph.schema.scalars import JSON
from comfygraph.schema.users import User

if TYPE_CHECKING:
    from comfygraph.resolvers.context import Context
    from comfygraph.schema.sessions import Session


@strawberry.type(description="One stored file that a job produced.")
class JobOutput:
    kind: OutputKind
    url: str = signed()
    filename: str
    mime_type: str | None
    node: str | None = strawberry.field(description="The ComfyUI node that produced it.")
    width: int | None
    height: int | None
    duration_seconds: float | None
    size_bytes: float | None
    job: strawberry.Private[Any] = None  # the job it belongs to: the grant of its URL


@strawberry.interface(description="Fields that every generation job has, whatever it outputs.")
class GenerationJob(Node):
    id: strawberry.ID
    output_type: OutputType
    workflow_name: str = strawberry.field(
        description="The workflow template that ran, e.g. lipsync-one, img2img, character-caption."
    )
    status: JobStatus
    progress: float = strawberry.field(
        description="Progress of the whole workflow, 0..100. Never decreases; 100 only once "
        "COMPLETED."
    )
    parameters: JSON = signed("The validated parameters the job was submitted with.")
    public: bool
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    processing_time_seconds: float | None
    error_message: str | None
    comfy_job_id: str | None = strawberry.field(
        description="ComfyUI's prompt_id once the job was handed to a worker."
    )
    comfy_url: str | None = strawberry.field(
        description="Base URL of the ComfyUI worker that ran the job."
    )
    cost_usd: float | None = strawberry.field(
        description="What the job cost, from the worker's GPU seconds and its configured price."
    )
    blocked_reason: str | None = strawberry.field(
        description="While PENDING: why no healthy worker can run it now, e.g. "
        '"no healthy worker has node MultiTalkModelLoader". Null when it can run.'
    )
    batch_id: strawberry.ID | None = strawberry.field(
        description="The batch (submitJob with count > 1) the job belongs to."
    )
    uid: strawberry.Private[uuid.UUID]
    user_id: strawberry.Private[uuid.UUID | None]
    session_id: strawberry.Private[uuid.UUID | None]
    raw_outputs: strawberry.Private[list[Any]]
    pinned: bool = False
    expired_at: datetime | None = None
    retention_days: strawberry.Private[int | None] = None

    @strawberry.field
    def expires_at(self, info: strawberry.Info[Context, None]) -> datetime | None:
        if self.pinned or self.completed_at is None or self.status is JobStatus.EXPIRED:
            return None
        days = self.retention_days or info.context.limits.retention_days
        return None if days is None else self.completed_at + timedelta(days=days)

    @strawberry.field(
        description="While PENDING: how many jobs are ahead of this one in the dispatch "
        "queue. Null otherwise."
    )
    async def queue_position(self, info: strawberry.Info[Context, None]) -> int | None:
        if self.status is not JobStatus.PENDING:
            return None
        return await info.context.loaders.queue_positions.load(self.uid)

    @strawberry.field
    async def owner(self, info: strawberry.Info[Context, None]) -> User | None:
        if self.user_id is None:
            return None
        return await info.context.loaders.users.load(self.user_id)

    @strawberry.field
    async def session(
        self, info: strawberry.Info[Context, None]
    ) -> Annotated[Session, strawberry.lazy("comfygraph.schema.sessions")] | None:
        if self.session_id is None:
            return None
        return await info.context.loaders.sessions.load(self.session_id)

    @strawberry.field(
        description="Every file the job produced, whatever its kind: nothing a workflow "
        "outputs is dropped (a video job's thumbnail, a caption job's dataset)."
    )
    def outputs(self) -> list[JobOutput]:
        found = [out for item in self.raw_outputs if (out := job_output(item)) is not None]
        for out in found:
            out.job = self
        return found


@strawberry.type
class VideoJob(GenerationJob):
    input_image_urls: list[str] = signed()
    input_audio_urls: list[str] = signed()
    input_video_urls: list[str] = signed()
    output_video_urls: list[str] = signed()
    width: int | None
    height: int | None
    fps: int | None
    duration_seconds: float | None


@strawberry.type
class ImageJob(GenerationJob):
    input_image_urls: list[str] = signed()
    prompt: str | None
    output_image_urls: list[str] = signed()
    width: int | None
    height: int | None


@strawberry.type
class TextJob(GenerationJob):
    input_image_urls: list[str] = signed()
    prompt: str | None
    output_text: str | None
    output_urls: list[str] = signed("Files the job wrote (a caption dataset, for instance).")


@strawberry.type
class AudioJob(GenerationJob):
    input_audio_urls: list[str] = signed()
    output_audio_urls: list[str] = signed()
    duration_seconds: float | None
    sample_rate: int | None


AnyJob = VideoJob | ImageJob | TextJob | AudioJob
Job = Annotated[
    AnyJob,
    strawberry.union(
        "Job", description="One row of the unified jobs feed: whichever output table it lives in."
    ),
]
JOB_TYPES: dict[OutputType, type[AnyJob]] = {
    OutputType.VIDEO: VideoJob,
    OutputType.IMAGE: ImageJob,
    OutputType.TEXT: TextJob,
    OutputType.AUDIO: AudioJob,
}


@strawberry.input(description="Feeds are ordered newest first (createdAt, then id, descending).")
class JobFilter:
    scope: Scope | None = strawberry.UNSET
    output_types: list[OutputType] | None = strawberry.UNSET
    workflow_names: list[str] | None = strawberry.UNSET
    statuses: list[JobStatus] | None = strawberry.UNSET
    session_id: strawberry.ID | None = strawberry.UNSET
    batch_id: strawberry.ID | None = strawberry.UNSET
    created_after: datetime | None = strawberry.UNSET
    created_before: datetime | None = strawberry.UNSET


_KINDS = {kind.value: kind for kind in OutputKind}


def job_output(item: Any) -> JobOutput | None:
    """One entry of a job's `outputs` jsonb (camelCase or snake_case keys); None if unusable."""
    if not isinstance(item, dict) or not isinstance(item.get("url"), str):
        return None
    url: str = item["url"]

    def pick(camel: str, snake: str) -> Any:
        return item.get(camel, item.get(snake))

    kind = _KINDS.get(str(item.get("kind", "")).lower(), OutputKind.FILE)
    return JobOutput(
        kind=kind,
        url=url,
        filename=str(item.get("filename") or url.rsplit("/", 1)[-1]),
        mime_type=_text(pick("mimeType", "mime_type")),
        node=_text(item.get("node")),
        width=_dimension(item.get("width")),
        height=_dimension(item.get("height")),
        duration_seconds=_number(pick("durationSeconds", "duration_seconds"), float),
        size_bytes=_number(pick("sizeBytes", "size_bytes"), float),
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _dimension(value: Any) -> int | None:
    """A pixel size, or None when it is not one GraphQL's Int can carry (a stored output
    written by something else, e.g. 2**40): unusable, not an internal error."""
    number = _number(value, int)
    return number if number is not None and 0 <= number < 2**31 else None


def _number(value: Any, cast: type[int] | type[float]) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return cast(value)
