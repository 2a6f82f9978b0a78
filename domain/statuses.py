"""Statuses of jobs, sessions and assets. Values are what the database stores (its
CHECK constraints list the same); GraphQL shows the member names."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    #: past its retention: its stored files are deleted, the row and its costs kept
    EXPIRED = "expired"


#: a job in one of these never changes status again
TERMINAL: frozenset[JobStatus] = frozenset(
    {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.EXPIRED}
)


class SessionStatus(StrEnum):
    CREATED = "created"
    PROMPTING = "prompting"
    GENERATING_IMAGES = "generating_images"
    REVIEWING_IMAGES = "reviewing_images"
    GENERATING_VIDEOS = "generating_videos"
    REVIEWING_VIDEOS = "reviewing_videos"
    COMPOSING = "composing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class AssetType(StrEnum):
    IMAGE = "image"
    VIDEO_CLIP = "video_clip"
    FINAL_VIDEO = "final_video"
    AUDIO = "audio"


class AssetStatus(StrEnum):
    GENERATING = "generating"
    COMPLETED = "completed"
    FAILED = "failed"
    APPROVED = "approved"
    REJECTED = "rejected"
