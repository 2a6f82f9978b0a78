"""The JSON body of a delivery: Standard Webhooks' {type, timestamp, data}, where data is
the job (or session) as a GraphQL client reads it: global id, status, outputs with URLs."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from comfygraph.db.visibility import Viewer
from comfygraph.schema.jobs import job_output
from comfygraph.schema.node import to_global_id
from comfygraph.studio.files import FileSigner, Grant

JOB_TYPE_NAMES = {"video": "VideoJob", "image": "ImageJob", "text": "TextJob", "audio": "AudioJob"}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _num(value: Decimal | float | None) -> float | None:
    return None if value is None else float(value)


def job_data(kind: str, row: Mapping[str, Any], seen: Mapping[str, Any]) -> dict[str, Any]:
    """`seen`: what the event recorded (its status and progress win over the row's now)."""
    outputs = []
    for item in row.get("outputs") or []:
        out = job_output(item)
        if out is not None:
            outputs.append(
                {
                    "kind": out.kind.name,
                    "url": out.url,
                    "filename": out.filename,
                    "mimeType": out.mime_type,
                    "node": out.node,
                    "width": out.width,
                    "height": out.height,
                    "durationSeconds": out.duration_seconds,
                    "sizeBytes": out.size_bytes,
                }
            )
    status = str(seen.get("status") or row["status"])
    return {
        "id": to_global_id(JOB_TYPE_NAMES[kind], row["id"]),
        "outputType": kind.upper(),
        "workflowName": row["workflow_name"],
        "status": status.upper(),
        "progress": float(seen.get("progress", row["progress"])),
        "public": row["public"],
        "parameters": row["parameters"],
        "errorMessage": row["error_message"],
        "createdAt": _iso(row["created_at"]),
        "startedAt": _iso(row["started_at"]),
        "completedAt": _iso(row["completed_at"]),
        "processingTimeSeconds": row["processing_time_seconds"],
        "costUsd": _num(row["cost_usd"]),
        "comfyJobId": row["comfy_job_id"],
        "sessionId": None
        if row["session_id"] is None
        else to_global_id("Session", row["session_id"]),
        "outputs": outputs,
    }


def session_data(row: Mapping[str, Any], seen: Mapping[str, Any]) -> dict[str, Any]:
    status = str(seen.get("status") or row["status"])
    return {
        "id": to_global_id("Session", row["id"]),
        "status": status.upper(),
        "progressPercentage": row["progress_percentage"],
        "totalCost": _num(row["total_cost"]),
        "errorMessage": row["error_message"],
        "finalVideoUrl": row.get("final_video_url"),
        "createdAt": _iso(row["created_at"]),
        "completedAt": _iso(row["completed_at"]),
    }


def envelope(
    event: str,
    event_at: datetime,
    subject_type: str,
    row: Mapping[str, Any],
    seen: Mapping[str, Any],
) -> dict[str, Any]:
    data = (
        session_data(row, seen) if subject_type == "session" else job_data(subject_type, row, seen)
    )
    return {"type": event, "timestamp": event_at.isoformat(), "data": data}


def sign_urls(
    data: dict[str, Any], subject_type: str, row: Mapping[str, Any], signer: FileSigner
) -> dict[str, Any]:
    """The payload's file URLs signed as the subject's owner would see them: a receiver
    fetches them without a token, for as long as the signer's TTL (a day or more)."""
    owner = Viewer(user_id=row.get("user_id"))
    if subject_type == "session":
        grant = Grant.session(row["id"])
    else:
        grant = Grant.job(row["id"], public=bool(row.get("public")))
    return signer.sign_all(data, grant, owner)  # type: ignore[no-any-return]
