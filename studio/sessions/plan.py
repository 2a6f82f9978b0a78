"""What each stage submits (one job and one asset per image, per clip, one final video)
and what a finished job writes onto its asset. Pure functions over rows: no I/O."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from comfygraph.comfy.templates import WorkflowTemplate
from comfygraph.studio.sessions.states import CLIPS, FINAL, IMAGES
from comfygraph.studio.submit import JobRequest

Row = Mapping[str, Any]
VIEW_TYPES = ("front", "side", "back", "detail", "lifestyle")
# A camera move per view, so the clips of one ad do not all move alike.
CAMERA_FOR_VIEW = {
    "front": "Zoom In",
    "side": "Pan Right",
    "back": "Pan Left",
    "detail": "Zoom Out",
    "lifestyle": "Pan Left",
}
MAIN_OUTPUT = {IMAGES.asset_type: "IMAGE", CLIPS.asset_type: "VIDEO", FINAL.asset_type: "VIDEO"}
DEFAULT_CALL_TO_ACTION = "Shop now"


@dataclass(frozen=True)
class Planned:
    request: JobRequest
    asset: dict[str, Any]  # columns of the asset it makes (the job reference comes later)


def _default(template: WorkflowTemplate, name: str) -> Any:
    parameter = template.parameter(name)
    return None if parameter is None else parameter.default


def image_jobs(session: Row, template: WorkflowTemplate) -> list[Planned]:
    """num_images_requested product shots, views cycling front/side/back/detail/lifestyle,
    all with the session's consistency seed and style keywords."""
    keywords = ", ".join(session["style_keywords"] or []) or None
    style = keywords or _default(template, "style_keywords")
    prompt = session["user_product_prompt"]
    planned = []
    for index in range(session["num_images_requested"]):
        view = VIEW_TYPES[index % len(VIEW_TYPES)]
        parameters: dict[str, Any] = {"prompt": prompt, "view_type": view}
        if keywords:
            parameters["style_keywords"] = keywords
        if session["consistency_seed"] is not None:
            parameters["seed"] = session["consistency_seed"]
        asset = {
            "type": IMAGES.asset_type,
            "source": template.name,
            "view_type": view,
            "generation_prompt": f"{prompt}, {view} view, {style}",
            "negative_prompt": _default(template, "negative_prompt"),
            "guidance_scale": _decimal(_default(template, "guidance")),
        }
        planned.append(Planned(_request(template, session, parameters), asset))
    return planned


def clip_jobs(session: Row, template: WorkflowTemplate, images: Sequence[Row]) -> list[Planned]:
    """One clip per approved image (in mood-board order), starting from that image."""
    scene = session["user_video_prompt"] or session["user_product_prompt"]
    seconds = float(session["clip_duration_seconds"])
    planned = []
    for image in images:
        camera = CAMERA_FOR_VIEW.get(image["view_type"] or "", "Static")
        parameters: dict[str, Any] = {
            "image": image["url"],
            "prompt": scene,
            "duration_seconds": seconds,
            "camera_movement": camera,
        }
        if session["consistency_seed"] is not None:
            parameters["seed"] = session["consistency_seed"]
        asset = {
            "type": CLIPS.asset_type,
            "source": template.name,
            "source_image_id": image["id"],
            "view_type": image["view_type"],
            "scene_prompt": scene,
            "generation_prompt": scene,
            "camera_movement": camera,
            "motion_intensity": _decimal(_default(template, "motion_intensity")),
        }
        planned.append(Planned(_request(template, session, parameters), asset))
    return planned


def compose_job(session: Row, template: WorkflowTemplate, clips: Sequence[Row]) -> Planned:
    """The final ad over the approved clips, in mood-board order. Without a product name
    the product prompt (cut to 100 characters) is overlaid; music only when the session
    has it enabled and names a stored music file."""
    parameters: dict[str, Any] = {
        "clips": [clip["url"] for clip in clips],
        "product_name": session["product_name"] or session["user_product_prompt"][:100],
        "call_to_action": session["call_to_action"] or DEFAULT_CALL_TO_ACTION,
    }
    for column in ("text_color", "text_font"):
        if session[column]:
            parameters[column] = session[column]
    if session["background_music_enabled"] and session["music_url"]:
        parameters["music"] = session["music_url"]
    asset = {
        "type": FINAL.asset_type,
        "source": template.name,
        "generation_prompt": parameters["product_name"],
        "metadata": {"clips": [str(clip["id"]) for clip in clips]},
    }
    return Planned(_request(template, session, parameters), asset)


def _request(template: WorkflowTemplate, session: Row, parameters: dict[str, Any]) -> JobRequest:
    return JobRequest(template.name, parameters, session_id=session["id"])


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


@dataclass(frozen=True)
class Result:
    columns: dict[str, Any]  # for db.assets.settle_asset
    error: str | None  # set when the asset failed


def asset_result(asset_type: str, job: Row, storage_key: Callable[[str], str | None]) -> Result:
    """What a job that ended writes onto its asset: the main output file's facts, cost and
    run time when it completed; FAILED with the reason otherwise."""
    if job["job_status"] == "cancelled":
        return Result({"status": "failed"}, "cancelled")
    if job["job_status"] != "completed":
        return Result({"status": "failed"}, job["error_message"] or "generation failed")
    kind = MAIN_OUTPUT.get(asset_type, "FILE")
    main = next(
        (o for o in job["outputs"] or [] if o.get("kind") == kind and not o.get("temporary")),
        None,
    )
    if main is None:
        return Result({"status": "failed"}, f"the job produced no {kind.lower()} file")
    width, height = main.get("width"), main.get("height")
    size, fps = main.get("sizeBytes"), main.get("fps")
    duration = main.get("durationSeconds")
    seconds = job["processing_time_seconds"]
    columns: dict[str, Any] = {
        "status": "completed",
        "url": main["url"],
        "storage_path": storage_key(main["url"]),
        "file_size_bytes": int(size) if size else None,
        "mime_type": main.get("mimeType"),
        "resolution": f"{width}x{height}" if width and height else None,
        "duration_seconds": _decimal(round(duration, 3)) if duration is not None else None,
        "fps": round(fps) if fps else None,
        "generation_cost": job["cost_usd"] if job["cost_usd"] is not None else Decimal(0),
        "generation_time_seconds": _decimal(round(seconds, 2)) if seconds is not None else None,
    }
    return Result(columns, None)
