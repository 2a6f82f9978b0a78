"""The scalar fields of sessions, assets and cost lines: the values resolvers/mapping.py's
session_from_row, asset_from_row and cost_line_from_row give, as the GraphQL scalars serialize them
(enums by name, numerics as floats, 64-bit ints that do not fit an Int as null)."""

from __future__ import annotations

from typing import Any

from comfygraph.domain.statuses import AssetStatus, AssetType, SessionStatus
from comfygraph.resolvers.compiled.fields import (
    Env,
    Getter,
    Row,
    as_float,
    as_iso,
    as_list,
    column,
)
from comfygraph.schema.enums import ProductCategory
from comfygraph.schema.node import to_global_id

_INT32 = range(-(2**31), 2**31)


def _global_id(type_name: str) -> Getter:
    return lambda row, env: to_global_id(type_name, row["id"])


def _enum(name: str, enum: Any) -> Getter:
    names = {e.value: e.name for e in enum}

    def get(row: Row, env: Env) -> str | None:
        value = row[name]
        return None if value is None else names[value]

    return get


def _int32_or_null(name: str) -> Getter:
    """mapping._int32: a value wider than GraphQL's Int answers null."""

    def get(row: Row, env: Env) -> int | None:
        value = row[name]
        return value if value is None or value in _INT32 else None

    return get


def _signed_asset_url(row: Row, env: Env) -> Any:
    return env.ctx.signed_asset_row(row, row["url"])


_SESSION_STATUS = _enum("status", SessionStatus)
SESSION_FIELDS: dict[str, Getter] = {
    "id": _global_id("Session"),
    "status": _SESSION_STATUS,
    "sessionStatus": _SESSION_STATUS,
    "currentStage": column("current_stage"),
    "progressPercentage": column("progress_percentage"),
    "productCategory": _enum("product_category", ProductCategory),
    "userProductPrompt": column("user_product_prompt"),
    "userVideoPrompt": column("user_video_prompt"),
    "consistencySeed": _int32_or_null("consistency_seed"),
    "styleKeywords": as_list("style_keywords"),
    "productName": column("product_name"),
    "callToAction": column("call_to_action"),
    "textColor": column("text_color"),
    "textFont": column("text_font"),
    "backgroundMusicEnabled": column("background_music_enabled"),
    "musicGenre": column("music_genre"),
    "musicUrl": column("music_url"),
    "numImagesRequested": column("num_images_requested"),
    "clipDurationSeconds": as_float("clip_duration_seconds"),
    "totalCost": as_float("total_cost"),
    "estimatedCost": as_float("estimated_cost"),
    "errorMessage": column("error_message"),
    "retryCount": column("retry_count"),
    "createdAt": as_iso("created_at"),
    "updatedAt": as_iso("updated_at"),
    "completedAt": as_iso("completed_at"),
    "metadata": column("metadata"),
}

_ASSET_STATUS = _enum("status", AssetStatus)
ASSET_FIELDS: dict[str, Getter] = {
    "id": _global_id("Asset"),
    "type": _enum("type", AssetType),
    "source": column("source"),
    "status": _ASSET_STATUS,
    "assetStatus": _ASSET_STATUS,
    "url": _signed_asset_url,
    "storagePath": column("storage_path"),
    "fileSizeBytes": as_float("file_size_bytes"),
    "mimeType": column("mime_type"),
    "resolution": column("resolution"),
    "durationSeconds": as_float("duration_seconds"),
    "fps": column("fps"),
    "generationCost": as_float("generation_cost"),
    "generationTimeSeconds": as_float("generation_time_seconds"),
    "modelVersion": column("model_version"),
    "viewType": column("view_type"),
    "seed": _int32_or_null("seed"),
    "guidanceScale": as_float("guidance_scale"),
    "scenePrompt": column("scene_prompt"),
    "cameraMovement": column("camera_movement"),
    "motionIntensity": as_float("motion_intensity"),
    "generationPrompt": column("generation_prompt"),
    "negativePrompt": column("negative_prompt"),
    "userSelected": column("user_selected"),
    "selectionOrder": column("selection_order"),
    "createdAt": as_iso("created_at"),
    "metadata": column("metadata"),
}

COST_LINE_FIELDS: dict[str, Getter] = {
    "category": column("category"),
    "provider": column("provider"),
    "apiCalls": column("api_calls"),
    "totalCost": as_float("total_cost"),
    "avgLatencyMs": column("avg_latency_ms"),
}
