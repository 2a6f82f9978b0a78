"""The session state machine of seed 004 and its progress formula.

    created          -generateSessionImages-> generating_images -image jobs ended-> reviewing_images
    reviewing_images -generateSessionClips->  generating_videos -clip jobs ended->  reviewing_videos
    reviewing_videos -composeSessionVideo->   composing         -final job ended->  completed
    a stage whose jobs all ended without one success -> failed (error_message says why)
    any state but completed/cancelled -cancelSession-> cancelled

selectAssets keeps the status. A generate mutation run again for a stage that already
ran (images again from reviewing_images or failed, clips again from reviewing_videos or
failed, compose again from failed) is a retry: retry_count + 1.

progress_percentage: each stage owns a band (images 0-40, clips 40-85, compose 85-100);
while it runs, progress = band start + band width x the mean of its jobs' progress (a job
that ended counts as 100); the stage's end value once it is done; 100 when completed.
It is only ever raised (a retry keeps the high-water mark).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from comfygraph.domain.statuses import SessionStatus

CREATED = SessionStatus.CREATED
PROMPTING = SessionStatus.PROMPTING
GENERATING_IMAGES = SessionStatus.GENERATING_IMAGES
REVIEWING_IMAGES = SessionStatus.REVIEWING_IMAGES
GENERATING_VIDEOS = SessionStatus.GENERATING_VIDEOS
REVIEWING_VIDEOS = SessionStatus.REVIEWING_VIDEOS
COMPOSING = SessionStatus.COMPOSING
COMPLETED = SessionStatus.COMPLETED
FAILED = SessionStatus.FAILED
CANCELLED = SessionStatus.CANCELLED


@dataclass(frozen=True)
class Stage:
    name: str  # what sessions.current_stage shows (seed 004's vocabulary)
    asset_type: str  # the assets its jobs make
    workflow: str  # the workflow template each job runs
    running: str  # the status while its jobs run
    done: str  # the status once they ended with at least one success
    start: int  # its band of progress_percentage
    end: int
    batch_column: str  # the session column listing the assets of its latest run
    noun: str  # for messages

    def batch(self, session: Mapping[str, Any]) -> list[uuid.UUID]:
        """The assets of this stage's latest run."""
        value = session[self.batch_column]
        if isinstance(value, uuid.UUID):
            return [value]
        return list(value or [])

    def progress(self, job_progress: Iterable[float]) -> int:
        values = list(job_progress)
        if not values:
            return self.start
        mean = min(100.0, max(0.0, sum(values) / len(values)))
        return self.start + int((self.end - self.start) * mean / 100)


IMAGES = Stage("image_gen", "image", "product-image", GENERATING_IMAGES, REVIEWING_IMAGES,
               0, 40, "generated_image_ids", "image generations")  # fmt: skip
CLIPS = Stage("video_gen", "video_clip", "image-to-clip", GENERATING_VIDEOS, REVIEWING_VIDEOS,
              40, 85, "generated_clip_ids", "clip generations")  # fmt: skip
FINAL = Stage("composition", "final_video", "compose-ad", COMPOSING, COMPLETED,
              85, 100, "final_video_id", "compositions")  # fmt: skip
STAGES = (IMAGES, CLIPS, FINAL)
RUNNING = {stage.running: stage for stage in STAGES}

# Where each mutation may start from; anything else is INVALID_STATE.
START_FROM: dict[Stage, tuple[str, ...]] = {
    IMAGES: (CREATED, PROMPTING, REVIEWING_IMAGES, FAILED),
    CLIPS: (REVIEWING_IMAGES, REVIEWING_VIDEOS, FAILED),
    FINAL: (REVIEWING_VIDEOS, FAILED),
}
SELECT_IN: dict[str, tuple[str, ...]] = {  # by asset type
    IMAGES.asset_type: (REVIEWING_IMAGES, REVIEWING_VIDEOS, FAILED),
    CLIPS.asset_type: (REVIEWING_VIDEOS, FAILED),
}
SELECTABLE_IN = frozenset(s for states in SELECT_IN.values() for s in states)
CANCEL_FROM = (CREATED, PROMPTING, GENERATING_IMAGES, REVIEWING_IMAGES, GENERATING_VIDEOS,
               REVIEWING_VIDEOS, COMPOSING, FAILED)  # fmt: skip
# Regenerating a stage takes that stage's and every later stage's assets off the mood board.
RESETS: dict[Stage, dict[str, Any]] = {
    IMAGES: {"approved_image_ids": [], "generated_clip_ids": [], "approved_clip_ids": [],
             "final_video_id": None},
    CLIPS: {"approved_clip_ids": [], "final_video_id": None},
    FINAL: {},
}  # fmt: skip
RESET_TYPES: dict[Stage, tuple[str, ...]] = {
    IMAGES: ("image", "video_clip"),
    CLIPS: ("video_clip",),
    FINAL: (),
}
# Asset statuses that mean "generated successfully" (selectable, counted as a success).
GENERATED = ("completed", "approved", "rejected")
