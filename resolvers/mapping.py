"""asyncpg rows -> schema objects, once per row. Numeric columns become floats here."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import strawberry

from comfygraph.db.kinds import OutputType as Kind
from comfygraph.schema.enums import (
    AssetStatus,
    AssetType,
    JobStatus,
    OutputType,
    ProductCategory,
    Role,
    SessionStatus,
)
from comfygraph.schema.jobs import AnyJob, AudioJob, ImageJob, TextJob, VideoJob
from comfygraph.schema.node import to_global_id
from comfygraph.schema.sessions import Asset, CostLine, Session
from comfygraph.schema.users import User

Row = Mapping[str, Any]

JOB_TYPE_NAMES: dict[Kind, str] = {
    Kind.VIDEO: "VideoJob",
    Kind.IMAGE: "ImageJob",
    Kind.TEXT: "TextJob",
    Kind.AUDIO: "AudioJob",
}
KIND_OF_TYPE_NAME = {name: kind for kind, name in JOB_TYPE_NAMES.items()}
_INT32 = range(-(2**31), 2**31)


def _float(value: Decimal | float | None) -> float | None:
    return None if value is None else float(value)


def _int32(value: int | None) -> int | None:
    """GraphQL Int is 32-bit: a wider value (a 64-bit seed) answers null, not an error."""
    return value if value is None or value in _INT32 else None


def job_from_row(kind: Kind, row: Row) -> AnyJob:
    """A typed job from a row of its table or of the unified feed."""
    common: dict[str, Any] = {
        "id": to_global_id(JOB_TYPE_NAMES[kind], row["id"]),
        "uid": row["id"],
        "output_type": OutputType(kind.value),
        "workflow_name": row["workflow_name"],
        "status": JobStatus(row["status"]),
        "progress": row["progress"],
        "parameters": row["parameters"],
        "public": row["public"],
        "created_at": row["created_at"],
        "started_at": row["started_at"],
        "completed_at": row["completed_at"],
        "processing_time_seconds": row["processing_time_seconds"],
        "error_message": row["error_message"],
        "comfy_job_id": row["comfy_job_id"],
        "comfy_url": row["comfy_url"],
        "cost_usd": _float(row["cost_usd"]),
        "user_id": row["user_id"],
        "session_id": row["session_id"],
        "raw_outputs": row["outputs"] or [],
        "blocked_reason": row.get("blocked_reason") if row["status"] == "pending" else None,
        "batch_id": None if row.get("batch_id") is None else strawberry.ID(str(row["batch_id"])),
        "pinned": bool(row.get("pinned", False)),
        "expired_at": row.get("expired_at"),
        "retention_days": row.get("retention_days"),
    }
    if kind is Kind.VIDEO:
        return VideoJob(
            **common,
            input_image_urls=row["input_image_urls"] or [],
            input_audio_urls=row["input_audio_urls"] or [],
            input_video_urls=row["input_video_urls"] or [],
            output_video_urls=row["output_video_urls"] or [],
            width=row["width"],
            height=row["height"],
            fps=row["fps"],
            duration_seconds=row["duration_seconds"],
        )
    if kind is Kind.IMAGE:
        return ImageJob(
            **common,
            input_image_urls=row["input_image_urls"] or [],
            prompt=row["prompt"],
            output_image_urls=row["output_image_urls"] or [],
            width=row["width"],
            height=row["height"],
        )
    if kind is Kind.TEXT:
        return TextJob(
            **common,
            input_image_urls=row["input_image_urls"] or [],
            prompt=row["prompt"],
            output_text=row["output_text"],
            output_urls=row["output_urls"] or [],
        )
    return AudioJob(
        **common,
        input_audio_urls=row["input_audio_urls"] or [],
        output_audio_urls=row["output_audio_urls"] or [],
        duration_seconds=row["duration_seconds"],
        sample_rate=row["sample_rate"],
    )


def user_from_row(row: Row, *, revealed: bool = False) -> User:
    return User(
        revealed=revealed,
        id=to_global_id("User", row["id"]),
        uid=row["id"],
        address=row["email"],
        full_name=row["full_name"],
        role=Role(row["role"]),
        created_at=row["created_at"],
    )


def session_from_row(row: Row) -> Session:
    category = row["product_category"]
    return Session(
        id=to_global_id("Session", row["id"]),
        uid=row["id"],
        user_id=row["user_id"],
        final_video_id=row["final_video_id"],
        status=SessionStatus(row["status"]),
        current_stage=row["current_stage"],
        progress_percentage=row["progress_percentage"],
        product_category=None if category is None else ProductCategory(category),
        user_product_prompt=row["user_product_prompt"],
        user_video_prompt=row["user_video_prompt"],
        consistency_seed=_int32(row["consistency_seed"]),
        style_keywords=row["style_keywords"] or [],
        product_name=row["product_name"],
        call_to_action=row["call_to_action"],
        text_color=row["text_color"],
        text_font=row["text_font"],
        background_music_enabled=row["background_music_enabled"],
        music_genre=row["music_genre"],
        music_url=row["music_url"],
        num_images_requested=row["num_images_requested"],
        clip_duration_seconds=float(row["clip_duration_seconds"]),
        total_cost=float(row["total_cost"]),
        estimated_cost=_float(row["estimated_cost"]),
        error_message=row["error_message"],
        retry_count=row["retry_count"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        completed_at=row["completed_at"],
        metadata=row["metadata"],
    )


def asset_from_row(row: Row) -> Asset:
    job_kind = row["job_output_type"]
    return Asset(
        id=to_global_id("Asset", row["id"]),
        uid=row["id"],
        session_id=row["session_id"],
        source_image_id=row["source_image_id"],
        job_ref=None if job_kind is None else (job_kind, row["job_id"]),
        type=AssetType(row["type"]),
        source=row["source"],
        status=AssetStatus(row["status"]),
        url=row["url"],
        storage_path=row["storage_path"],
        file_size_bytes=_float(row["file_size_bytes"]),
        mime_type=row["mime_type"],
        resolution=row["resolution"],
        duration_seconds=_float(row["duration_seconds"]),
        fps=row["fps"],
        generation_cost=float(row["generation_cost"]),
        generation_time_seconds=_float(row["generation_time_seconds"]),
        model_version=row["model_version"],
        view_type=row["view_type"],
        seed=_int32(row["seed"]),
        guidance_scale=_float(row["guidance_scale"]),
        scene_prompt=row["scene_prompt"],
        camera_movement=row["camera_movement"],
        motion_intensity=_float(row["motion_intensity"]),
        generation_prompt=row["generation_prompt"],
        negative_prompt=row["negative_prompt"],
        user_selected=row["user_selected"],
        selection_order=row["selection_order"],
        created_at=row["created_at"],
        metadata=row["metadata"],
    )


def cost_line_from_row(row: Row) -> CostLine:
    return CostLine(
        category=row["category"],
        provider=row["provider"],
        api_calls=row["api_calls"],
        total_cost=float(row["total_cost"]),
        avg_latency_ms=row["avg_latency_ms"],
    )
