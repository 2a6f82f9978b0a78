"""The four legacy tables of seed 001, and where their rows go (seed 002, fixed).

A spec names the key that identifies a row (it becomes ``legacy_id``), the columns the
importer requires, the statuses it understands and the job tables a row may land in.
``datasets`` was never examined (seed 001), so its key and columns are discovered at
run time; its spec only says where its rows go.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from comfygraph.db.kinds import OutputType

# A legacy status that says the job was still queued or running on a ComfyUI worker:
# it becomes PROCESSING (adopted) or FAILED (lost) once that worker has been asked.
IN_FLIGHT = "in-flight"
# claimed_by of an adopted job until a replica's recovery takes it over.
CLAIMED_BY = "legacy-import"

# The workflows a multitalk_jobs row can be (seed 001: every video feature, plus img2img
# "forced to fit this schema"), and the table each one lives in.
MULTITALK_WORKFLOWS: Mapping[str, OutputType] = {
    "lipsync-one": OutputType.VIDEO,
    "lipsync-multi": OutputType.VIDEO,
    "video-lipsync": OutputType.VIDEO,
    "wan-i2v": OutputType.VIDEO,
    "img2img": OutputType.IMAGE,
}


@dataclass(frozen=True)
class LegacyTable:
    name: str
    key: str | None  # None: the primary key (or an `id` column) found at run time
    required: tuple[str, ...]
    expected: tuple[str, ...]  # seed 001's columns; others are kept in parameters only
    kinds: tuple[OutputType, ...]  # the job tables its rows may land in
    statuses: Mapping[str, str]  # lower-cased legacy status -> job status or IN_FLIGHT
    identity: tuple[str, ...]  # what names a row that has no key (empty: the whole row)

    @property
    def status_list(self) -> str:
        return ", ".join(self.statuses)


MULTITALK_JOBS = LegacyTable(
    name="multitalk_jobs",
    key="job_id",
    required=("job_id", "status"),
    expected=(
        "job_id", "status", "timestamp_submitted", "timestamp_completed", "filename",
        "subfolder", "image_filename", "audio_filename", "width", "height", "trim_to_audio",
        "comfy_url", "error_message", "video_url", "created_at", "updated_at",
    ),
    kinds=(OutputType.VIDEO, OutputType.IMAGE),
    statuses={"submitted": IN_FLIGHT, "processing": IN_FLIGHT,
              "completed": "completed", "error": "failed"},
    # Columns fixed when the job was submitted: a keyless row keeps its identity while
    # the legacy app updates its status.
    identity=("timestamp_submitted", "created_at", "image_filename", "audio_filename",
              "width", "height", "comfy_url"),
)  # fmt: skip

STYLE_TRANSFERS = LegacyTable(
    name="style_transfers",
    key="id",
    required=("id", "status"),
    expected=(
        "id", "created_at", "source_image_url", "style_image_url", "prompt", "result_image_url",
        "workflow_name", "model_used", "processing_time_seconds", "user_ip", "status",
        "comfyui_prompt_id", "error_message", "updated_at",
    ),
    kinds=(OutputType.IMAGE,),
    statuses={"pending": IN_FLIGHT, "processing": IN_FLIGHT,
              "completed": "completed", "failed": "failed"},
    identity=("created_at", "source_image_url", "style_image_url", "prompt", "user_ip"),
)  # fmt: skip

EDITED_IMAGES = LegacyTable(
    name="edited_images",
    key="id",
    required=("id", "status"),
    expected=(
        "id", "created_at", "source_image_url", "prompt", "result_image_url", "workflow_name",
        "model_used", "processing_time_seconds", "user_ip", "status",
    ),
    kinds=(OutputType.IMAGE,),
    statuses=STYLE_TRANSFERS.statuses,
    identity=("created_at", "source_image_url", "prompt", "user_ip"),
)  # fmt: skip

DATASETS = LegacyTable(
    name="datasets",
    key=None,
    required=(),
    expected=(),
    kinds=(OutputType.TEXT,),
    statuses={"pending": IN_FLIGHT, "submitted": IN_FLIGHT, "processing": IN_FLIGHT,
              "completed": "completed", "failed": "failed", "error": "failed"},
    identity=(),
)  # fmt: skip

TABLES: Mapping[str, LegacyTable] = {
    t.name: t for t in (MULTITALK_JOBS, STYLE_TRANSFERS, EDITED_IMAGES, DATASETS)
}


def parse_tables(raw: str | None) -> tuple[LegacyTable, ...]:
    """`--tables a,b`: the named tables in their canonical order; all four when unset."""
    if not raw:
        return tuple(TABLES.values())
    names = [n.strip() for n in raw.split(",") if n.strip()]
    unknown = [n for n in names if n not in TABLES]
    if unknown or not names:
        raise ValueError(
            f"unknown legacy table(s) {', '.join(unknown) or repr(raw)}; "
            f"choose from {', '.join(TABLES)}"
        )
    return tuple(t for t in TABLES.values() if t.name in names)
