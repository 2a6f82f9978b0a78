"""The four output-type job tables and the columns each one has."""

from __future__ import annotations

from collections.abc import Iterable

from comfygraph.domain.kinds import OutputType

__all__ = ["COMMON_COLUMNS", "SPECIFIC_COLUMNS", "OutputType"]


COMMON_COLUMNS: tuple[str, ...] = (
    "id", "user_id", "workflow_name", "status", "progress", "parameters", "public",
    "session_id", "comfy_job_id", "comfy_url", "comfyui_output_filename",
    "comfyui_output_subfolder", "comfyui_output_type", "outputs", "error_message",
    "model_used", "user_ip", "idempotency_key", "priority", "attempts", "claimed_by",
    "lease_expires_at", "cost_usd", "created_at", "updated_at", "started_at", "completed_at",
    "processing_time_seconds", "deleted_at", "legacy_source", "legacy_id",
    "webhook_url",
    "blocked_reason", "batch_id",
    "template_version",
    "pinned", "retention_days", "expired_at",
)  # fmt: skip

# Type-specific columns and their SQL types (the unified feed pads the missing ones with NULL).
SPECIFIC_COLUMNS: dict[str, str] = {
    "input_image_urls": "text[]",
    "input_audio_urls": "text[]",
    "input_video_urls": "text[]",
    "output_video_urls": "text[]",
    "output_image_urls": "text[]",
    "output_audio_urls": "text[]",
    "output_urls": "text[]",
    "prompt": "text",
    "output_text": "text",
    "width": "integer",
    "height": "integer",
    "fps": "integer",
    "duration_seconds": "double precision",
    "sample_rate": "integer",
}

COLUMNS_OF: dict[OutputType, frozenset[str]] = {
    OutputType.VIDEO: frozenset(
        {"input_image_urls", "input_audio_urls", "input_video_urls", "output_video_urls",
         "width", "height", "fps", "duration_seconds"}
    ),
    OutputType.IMAGE: frozenset(
        {"input_image_urls", "prompt", "output_image_urls", "width", "height"}
    ),
    OutputType.TEXT: frozenset({"input_image_urls", "prompt", "output_text", "output_urls"}),
    OutputType.AUDIO: frozenset(
        {"input_audio_urls", "output_audio_urls", "duration_seconds", "sample_rate"}
    ),
}  # fmt: skip


def writable_columns(kind: OutputType) -> frozenset[str]:
    return frozenset(COMMON_COLUMNS) | COLUMNS_OF[kind]


# What a row needs to be mapped to a schema object (resolvers/mapping.job_from_row)
# and checked for visibility: the feeds select these, not every column of the table.
READ_COLUMNS: tuple[str, ...] = (
    "id", "user_id", "workflow_name", "status", "progress", "parameters", "public",
    "session_id", "comfy_job_id", "comfy_url", "outputs", "error_message", "cost_usd",
    "created_at", "started_at", "completed_at", "processing_time_seconds", "deleted_at",
    "blocked_reason", "batch_id",
    "pinned", "retention_days", "expired_at",
    *SPECIFIC_COLUMNS,
)  # fmt: skip
# Every feed row carries these (the keyset and the visibility check need them).
KEY_COLUMNS: tuple[str, ...] = ("id", "created_at", "user_id", "public", "deleted_at")


def unified_select_list(kind: OutputType, columns: Iterable[str] | None = None) -> str:
    """The select list of one branch of the unified feed: `columns` (default: every
    column of every kind), plus the key columns; a column the table lacks is NULL."""
    parts = [f"'{kind.value}'::text AS kind"]
    if columns is None:
        parts += list(COMMON_COLUMNS)
        wanted: Iterable[str] = SPECIFIC_COLUMNS
    else:
        chosen = dict.fromkeys([*KEY_COLUMNS, *columns])
        parts += [c for c in chosen if c in COMMON_COLUMNS]
        wanted = [c for c in chosen if c in SPECIFIC_COLUMNS]
    for col in wanted:
        sqltype = SPECIFIC_COLUMNS[col]
        parts.append(col if col in COLUMNS_OF[kind] else f"NULL::{sqltype} AS {col}")
    return ", ".join(parts)
