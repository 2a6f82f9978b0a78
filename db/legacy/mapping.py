"""One legacy row -> one job row: seed 002's mapping with its defects fixed. No I/O.

What seed 002 got wrong, and what happens here instead:

- `ARRAY[col]` of a NULL column is `{NULL}`: absent files give empty arrays (`_names`).
- every multitalk row became 'lipsync-one': the workflow is inferred from the row
  (`infer_workflow`), or taken from the operator's workflow map; guesses are marked in
  parameters.legacy (workflow_guess, workflow_reason). img2img rows go to image_jobs.
- `completed_at = updated_at` for every style transfer: only completed rows get one.
- unknown statuses became 'pending' (and would have been dispatched): they become
  FAILED with a message; submitted/processing rows are IN_FLIGHT until their worker
  has been asked (`settle`). No imported row is ever PENDING.
- a hard-coded comfy_url on image rows: NULL unless the operator names one.
- `EXTRACT(EPOCH ...)::INTEGER` truncated durations (and a negative one broke the
  CHECK): seconds as double precision, negative ones dropped with a note.
- naive timestamps were read in the server's time zone: they are read in the source
  time zone the operator names (UTC by default).
- every row records legacy_source/legacy_id and a fingerprint of what it was made
  from, so a re-run inserts nothing twice and updates only what changed.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from operator import itemgetter
from typing import Any
from urllib.parse import urlsplit

import orjson

from comfygraph.db.kinds import OutputType
from comfygraph.db.legacy.tables import (
    CLAIMED_BY,
    IN_FLIGHT,
    MULTITALK_JOBS,
    MULTITALK_WORKFLOWS,
    LegacyTable,
)

# Part of every fingerprint: bump it when the mapping changes, and the next run
# re-derives (updates) every row it still owns.
MAPPING_VERSION = "1"

IMAGE_EXT = frozenset({"png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff"})
VIDEO_EXT = frozenset({"mp4", "mov", "webm", "mkv", "avi", "m4v", "gif"})
# Searched in lower-cased file names; each starts with a literal, which re scans fast.
_MULTI = re.compile(r"multi(?:ple)?[-_ ]?(?:person|people|speaker)")
_LIPSYNC_MULTI = re.compile(r"lipsync[-_ ]?multi")

COMMON_WRITE: tuple[str, ...] = (
    "id", "legacy_source", "legacy_id", "workflow_name", "status", "progress", "parameters",
    "comfy_job_id", "comfy_url", "comfyui_output_filename", "comfyui_output_subfolder",
    "comfyui_output_type", "error_message", "model_used", "user_ip", "attempts", "claimed_by",
    "lease_expires_at", "created_at", "updated_at", "started_at", "completed_at",
    "processing_time_seconds",
)  # fmt: skip
SPECIFIC_WRITE: Mapping[OutputType, tuple[str, ...]] = {
    OutputType.VIDEO: ("input_image_urls", "input_audio_urls", "input_video_urls",
                       "output_video_urls", "width", "height"),
    OutputType.IMAGE: ("input_image_urls", "prompt", "output_image_urls", "width", "height"),
    OutputType.TEXT: ("input_image_urls", "prompt", "output_text", "output_urls"),
}  # fmt: skip


def write_columns(kind: OutputType) -> tuple[str, ...]:
    """The columns an imported row sets, in COPY order."""
    return COMMON_WRITE + SPECIFIC_WRITE[kind]


# Every column of every kind, NULL unless said otherwise: a row's values dict starts here.
_BLANK: Mapping[str, Any] = {
    **dict.fromkeys((c for k in SPECIFIC_WRITE for c in write_columns(k)), None),
    "progress": 0.0, "attempts": 0, "input_image_urls": [], "input_audio_urls": [],
    "input_video_urls": [], "output_video_urls": [], "output_image_urls": [], "output_urls": [],
}  # fmt: skip
_RECORD = {kind: itemgetter(*write_columns(kind)) for kind in SPECIFIC_WRITE}
_random_bits = random.Random().getrandbits  # seeded from os.urandom


@dataclass(frozen=True)
class MapContext:
    now: datetime  # the import's start: lease expiry of adopted jobs, last-resort created_at
    tz: tzinfo  # zone of timestamps stored without one
    comfy_url: str | None = None  # --comfy-url: the worker of the image tables' rows
    workflow_map: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    """What a legacy job's worker said: does it still know the job?"""

    known: bool
    detail: str


@dataclass(slots=True)
class Mapped:
    legacy_id: str
    kind: OutputType
    values: dict[str, Any]
    params: dict[str, Any]
    legacy: dict[str, Any]
    in_flight: bool = False
    ask: tuple[str, str] | None = None  # (worker URL, ComfyUI job id) to ask
    lost_reason: str = ""  # why there is nobody to ask

    @property
    def fingerprint(self) -> str:
        return str(self.legacy["fingerprint"])


# --------------------------------------------------------------------------- values


def clean_text(value: Any) -> str | None:
    """Text for a text column: NUL (legal in JSON, not in PostgreSQL text) becomes U+FFFD."""
    if value is None:
        return None
    if type(value) is not str:
        value = orjson.dumps(value).decode() if isinstance(value, dict | list) else str(value)
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def _name(value: Any) -> str | None:
    """A file name or URL; blank means absent."""
    if value is None:
        return None
    text = (value if type(value) is str else clean_text(value) or "").strip()
    if not text:
        return None
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def _names(*values: Any) -> list[str]:
    return [n for n in map(_name, values) if n is not None]


def _files(value: Any) -> list[str]:
    """One column that may hold several files: a JSON array, or a comma-separated list."""
    if isinstance(value, list):
        return _names(*value)
    name = _name(value)
    if name is None:
        return []
    if name.startswith("["):
        try:
            parsed = orjson.loads(name)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, list):
            return _names(*parsed)
    if "," in name:
        parts = [p.strip() for p in name.split(",")]
        if all(p and "." in p.rsplit("/", 1)[-1] for p in parts):
            return parts
    return [name]


def extension(name: str) -> str:
    path = urlsplit(name).path if "://" in name else name
    tail = path.rsplit("/", 1)[-1]
    return tail.rsplit(".", 1)[-1].lower() if "." in tail else ""


def _positive_int(value: Any, what: str, notes: list[str]) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value) if not isinstance(value, str) else int(value.strip())
    except (TypeError, ValueError):
        notes.append(f"{what} {value!r} is not a whole number: dropped")
        return None
    if number <= 0 or number > 2**31 - 1:
        notes.append(f"{what} {number} is not a positive size: dropped")
        return None
    return number


def _seconds(value: Any, what: str, notes: list[str]) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        notes.append(f"{what} {value!r} is not a number: dropped")
        return None
    if not number >= 0 or number == float("inf"):  # also NaN
        notes.append(f"{what} {number} is not a duration: dropped")
        return None
    return number


def _bool(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("t", "true", "y", "yes", "1", "on"):
        return True
    if text in ("f", "false", "n", "no", "0", "off"):
        return False
    return None


def timestamp(value: Any, what: str, ctx: MapContext, notes: list[str]) -> datetime | None:
    """A JSON timestamp as PostgreSQL writes it (or text that looks like one).

    Without an offset (a `timestamp without time zone` column) it is read in the source
    time zone, not in whatever zone the target session happens to use.
    """
    if value is None or value == "":
        return None
    try:
        parsed = datetime.fromisoformat(value if type(value) is str else str(value))
    except ValueError:
        try:
            parsed = datetime.fromisoformat(str(value).strip())
        except ValueError:
            notes.append(f"{what} {value!r} is not a timestamp: dropped")
            return None
    return parsed.replace(tzinfo=ctx.tz) if parsed.tzinfo is None else parsed


def _first_time(row: Mapping[str, Any], columns: tuple[str, ...], ctx: MapContext,
                notes: list[str]) -> datetime | None:  # fmt: skip
    for column in columns:
        found = timestamp(row.get(column), column, ctx, notes)
        if found is not None:
            return found
    return None


def _url(value: Any) -> str | None:
    name = _name(value)
    return name.rstrip("/") if name else None


def _join_errors(ours: str | None, legacy: Any) -> str | None:
    theirs = clean_text(legacy)
    if ours and theirs:
        return f"{ours}; legacy error: {theirs}"
    return ours or theirs


def map_status(table: LegacyTable, raw: Any) -> tuple[str, str | None]:
    """(job status or IN_FLIGHT, the error when the legacy status is unknown).

    Case and surrounding blanks are ignored; anything else outside seed 001's list for
    the table is unknown, and an unknown job is FAILED, never queued again.
    """
    mapped = table.statuses.get(raw.strip().lower() if type(raw) is str else str(raw).lower())
    if mapped is not None and raw is not None:
        return mapped, None
    known = f"{table.name} knows {table.status_list}"
    if raw is None:
        return "failed", f"legacy status is missing ({known})"
    return "failed", f"legacy status {clean_text(raw)!r} is unknown ({known})"


def time_ordered_uuid(at: datetime) -> str:
    """A UUIDv7 (RFC 9562) stamped with the job's creation time, as 32 hex digits
    (asyncpg encodes those directly; building a uuid.UUID per row costs more).

    Rows imported in creation order then append to the primary-key index instead of
    landing at random places in it, which keeps a million-row import fast.
    """
    ms = int(at.timestamp() * 1000) & ((1 << 48) - 1)
    rand = _random_bits(74)  # unique, not secret: no syscall per row
    value = (ms << 80) | (0x7 << 76) | (((rand >> 62) & 0xFFF) << 64) | (0b10 << 62)
    return f"{value | (rand & ((1 << 62) - 1)):032x}"


def fingerprint(table: LegacyTable, row_text: str, legacy_id: str, ctx: MapContext) -> str:
    """What an imported row was made from: the source row's text, the options that
    change its mapping, and the mapping's version. A re-run updates a row only when
    this differs."""
    digest = hashlib.md5(row_text.encode(), usedforsecurity=False)
    digest.update(f"\x1f{MAPPING_VERSION}\x1f{ctx.tz}".encode())
    if table is MULTITALK_JOBS:
        digest.update(f"\x1f{ctx.workflow_map.get(legacy_id, '')}".encode())
    elif table.kinds == (OutputType.IMAGE,):
        digest.update(f"\x1f{ctx.comfy_url or ''}".encode())
    return digest.hexdigest()


# --------------------------------------------------------------------------- workflows


def infer_workflow(row: Mapping[str, Any]) -> tuple[str, str]:
    """The workflow a multitalk_jobs row most likely ran, and why (seed 001's facts).

    img2img was forced into this table: no audio, and an image where the video would
    be. With audio it was a lipsync: a video input means video-lipsync, several audio
    files (or file names saying so) lipsync-multi, else lipsync-one. Without audio and
    without an image output: wan-i2v.
    """
    return _infer(
        _files(row.get("audio_filename")), _name(row.get("image_filename")),
        _name(row.get("filename")), _name(row.get("video_url")), _name(row.get("subfolder")),
    )  # fmt: skip


def _infer(audios: list[str], image: str | None, output: str | None, result: str | None,
           subfolder: str | None) -> tuple[str, str]:  # fmt: skip
    def hints() -> str:
        return " ".join(h for h in (output, subfolder, result) if h).lower()

    if not audios:
        for name in (output, result):
            if name and extension(name) in IMAGE_EXT:
                return "img2img", f"no audio, and its output {name!r} is an image"
        if "img2img" in hints():
            return "img2img", "no audio, and its output file names say img2img"
        return "wan-i2v", "no audio, and no image output"
    if image and extension(image) in VIDEO_EXT:
        return "video-lipsync", f"audio, and its input {image!r} is a video"
    if len(audios) > 1:
        return "lipsync-multi", f"{len(audios)} audio files"
    names = hints()
    if _MULTI.search(names) or _LIPSYNC_MULTI.search(names):
        return "lipsync-multi", "one audio column, but its file names say multi-person"
    return "lipsync-one", "one audio file"


# --------------------------------------------------------------------------- tables


def _base(table: LegacyTable, row: Mapping[str, Any], legacy_id: str,
          fp: str) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
    legacy: dict[str, Any] = {
        "source": table.name,
        "id": legacy_id,
        "fingerprint": fp,
        "status": clean_text(row.get("status")),
        "row": row,
    }
    values: dict[str, Any] = dict(_BLANK)
    values.update(legacy_source=table.name, legacy_id=legacy_id)
    return values, legacy


def _finish(values: dict[str, Any], legacy: dict[str, Any], status_error: str | None,
            notes: list[str]) -> bool:  # fmt: skip
    """Settle a known status; say whether the row is in flight (its worker decides)."""
    status = values["status"]
    if status_error:
        values["error_message"] = _join_errors(status_error, values.get("error_message"))
    if status == "completed":
        values["progress"] = 100.0
    elif values.get("completed_at") is not None:
        values["completed_at"] = None  # only completed rows get a completed_at
    if notes:
        legacy["notes"] = notes
    if status == IN_FLIGHT:
        return True
    legacy["imported_status"] = status
    return False


def map_multitalk(row: Mapping[str, Any], legacy_id: str, keyed: bool, fp: str,
                  ctx: MapContext) -> Mapped:  # fmt: skip
    notes: list[str] = []
    table = MULTITALK_JOBS
    values, legacy = _base(table, row, legacy_id, fp)
    image = _name(row.get("image_filename"))
    audios = _files(row.get("audio_filename"))
    output = _name(row.get("filename"))
    result = _name(row.get("video_url"))
    workflow = ctx.workflow_map.get(legacy_id)
    if workflow is not None:
        legacy.update(workflow_guess=False, workflow_reason="workflow map")
    else:
        subfolder = _name(row.get("subfolder"))
        workflow, reason = _infer(audios, image, output, result, subfolder)
        legacy.update(workflow_guess=True, workflow_reason=reason)
    kind = MULTITALK_WORKFLOWS[workflow]
    status, status_error = map_status(table, row.get("status"))

    submitted = timestamp(row.get("timestamp_submitted"), "timestamp_submitted", ctx, notes)
    created = submitted or _first_time(row, ("created_at", "updated_at"), ctx, notes)
    updated = timestamp(row.get("updated_at"), "updated_at", ctx, notes)
    completed = duration = None
    if status == "completed":
        completed = _first_time(row, ("timestamp_completed", "updated_at"), ctx, notes)
        if completed is not None and submitted is not None:
            duration = (completed - submitted).total_seconds()
            if duration < 0:
                notes.append(f"completed {-duration:.0f}s before it was submitted: no duration")
                duration = None
    if created is None:
        notes.append("no creation time: the import's time is used")
        created = ctx.now

    video_input = image is not None and extension(image) in VIDEO_EXT
    comfy_url = _url(row.get("comfy_url"))
    params: dict[str, Any] = {}
    values.update(
        workflow_name=workflow, status=status, created_at=created, updated_at=updated or created,
        completed_at=completed, processing_time_seconds=duration,
        comfy_job_id=legacy_id if keyed else None, comfy_url=comfy_url,
        comfyui_output_filename=output,
        comfyui_output_subfolder=(clean_text(row.get("subfolder")) or "") if output else None,
        comfyui_output_type="output" if output else None,
        error_message=clean_text(row.get("error_message")),
        width=_positive_int(row.get("width"), "width", notes),
        height=_positive_int(row.get("height"), "height", notes),
    )  # fmt: skip
    if kind is OutputType.VIDEO:
        values.update(
            input_image_urls=[image] if image and not video_input else [],
            input_video_urls=[image] if image and video_input else [],
            input_audio_urls=audios,
            output_video_urls=[result] if result else [],
        )
        trim = _bool(row.get("trim_to_audio"))
        if trim is not None:
            params["trim_to_audio"] = trim
    else:
        values.update(
            input_image_urls=[image] if image else [],
            output_image_urls=[result] if result else [],
            prompt=None,
        )
    mapped = Mapped(legacy_id, kind, values, params, legacy)
    mapped.in_flight = _finish(values, legacy, status_error, notes)
    if mapped.in_flight:
        if not keyed:
            mapped.lost_reason = "the legacy row has no ComfyUI job id"
        elif not comfy_url:
            mapped.lost_reason = "the legacy row names no ComfyUI worker"
        else:
            mapped.ask = (comfy_url, legacy_id)
    return mapped


def map_image_table(table: LegacyTable, workflow: str, row: Mapping[str, Any],
                    legacy_id: str, fp: str, ctx: MapContext) -> Mapped:  # fmt: skip
    """style_transfers ('style-transfer') and edited_images ('image-edit')."""
    notes: list[str] = []
    values, legacy = _base(table, row, legacy_id, fp)
    status, status_error = map_status(table, row.get("status"))
    created = _first_time(row, ("created_at", "updated_at"), ctx, notes)
    updated = timestamp(row.get("updated_at"), "updated_at", ctx, notes)
    duration = _seconds(row.get("processing_time_seconds"), "processing_time_seconds", notes)
    completed = None
    if status == "completed":
        if updated is not None:
            completed = updated
        elif created is not None and duration is not None:
            completed = created + timedelta(seconds=min(duration, 1e9))
    if created is None:
        notes.append("no creation time: the import's time is used")
        created = ctx.now
    prompt_id = _name(row.get("comfyui_prompt_id"))
    values.update(
        workflow_name=workflow, status=status, created_at=created, updated_at=updated or created,
        completed_at=completed, processing_time_seconds=duration,
        comfy_job_id=prompt_id, comfy_url=ctx.comfy_url,
        error_message=clean_text(row.get("error_message")),
        model_used=clean_text(row.get("model_used")), user_ip=clean_text(row.get("user_ip")),
        input_image_urls=_names(row.get("source_image_url"), row.get("style_image_url")),
        output_image_urls=_names(row.get("result_image_url")),
        prompt=clean_text(row.get("prompt")), width=None, height=None,
    )  # fmt: skip
    mapped = Mapped(legacy_id, OutputType.IMAGE, values, {}, legacy)
    mapped.in_flight = _finish(values, legacy, status_error, notes)
    if mapped.in_flight:
        if prompt_id is None:
            mapped.lost_reason = f"{table.name} recorded no ComfyUI job id"
        elif ctx.comfy_url is None:
            mapped.lost_reason = f"{table.name} records no worker and --comfy-url was not given"
        else:
            mapped.ask = (ctx.comfy_url, prompt_id)
    return mapped


def _pick(row: Mapping[str, Any], lowered: Mapping[str, str], *names: str) -> Any:
    for name in names:
        column = lowered.get(name)
        if column is not None and row.get(column) not in (None, ""):
            return row[column]
    return None


def _url_list(value: Any) -> list[str]:
    if isinstance(value, list):
        return _names(*(v for v in value if not isinstance(v, dict | list)))
    return _files(value)


def map_dataset(table: LegacyTable, row: Mapping[str, Any], legacy_id: str, keyed: bool,
                fp: str, ctx: MapContext) -> Mapped:  # fmt: skip
    """A datasets row, whatever its columns: the well-known names are mapped, the
    whole row is kept in parameters.legacy.row."""
    notes: list[str] = []
    values, legacy = _base(table, row, legacy_id, fp)
    lowered = {column.lower(): column for column in row}
    if "status" in lowered:
        status, status_error = map_status(table, row[lowered["status"]])
        legacy["status"] = clean_text(row[lowered["status"]])
    else:
        status, status_error = "completed", None
        legacy.update(status_guess=True, status_reason="datasets has no status column")

    def when(*names: str) -> datetime | None:
        return timestamp(_pick(row, lowered, *names), names[0], ctx, notes)

    created = when("created_at", "inserted_at", "timestamp") or when("updated_at")
    updated = when("updated_at")
    completed = (when("completed_at") or updated) if status == "completed" else None
    if created is None:
        notes.append("no creation time: the import's time is used")
        created = ctx.now
    output_text = _pick(row, lowered, "output_text", "caption", "captions", "text")
    comfy_url = _url(_pick(row, lowered, "comfy_url"))
    prompt_id = _name(_pick(row, lowered, "comfy_job_id", "comfyui_prompt_id", "prompt_id"))
    duration = _seconds(
        _pick(row, lowered, "processing_time_seconds"), "processing_time_seconds", notes
    )
    values.update(
        workflow_name="character-caption", status=status, created_at=created,
        updated_at=updated or created, completed_at=completed, processing_time_seconds=duration,
        comfy_job_id=prompt_id, comfy_url=comfy_url,
        error_message=clean_text(_pick(row, lowered, "error_message", "error")),
        model_used=clean_text(_pick(row, lowered, "model_used", "model")),
        user_ip=clean_text(_pick(row, lowered, "user_ip")),
        prompt=clean_text(_pick(row, lowered, "prompt", "caption_prompt", "trigger_word")),
        output_text=clean_text(output_text),
        input_image_urls=_url_list(_pick(row, lowered, "input_image_urls", "image_urls",
                                         "images", "image_url", "source_image_url")),
        output_urls=_url_list(_pick(row, lowered, "output_urls", "dataset_url", "zip_url",
                                    "output_url", "download_url", "url")),
    )  # fmt: skip
    mapped = Mapped(legacy_id, OutputType.TEXT, values, {}, legacy)
    mapped.in_flight = _finish(values, legacy, status_error, notes)
    if mapped.in_flight:
        if prompt_id is None or comfy_url is None:
            mapped.lost_reason = "the datasets row names no ComfyUI worker and job id"
        else:
            mapped.ask = (comfy_url, prompt_id)
    return mapped


def map_row(table: LegacyTable, row: Mapping[str, Any], legacy_id: str, *, keyed: bool,
            fp: str, ctx: MapContext) -> Mapped:  # fmt: skip
    """Map one legacy row (a dict of its columns, as row_to_json wrote them)."""
    if table.name == "multitalk_jobs":
        return map_multitalk(row, legacy_id, keyed, fp, ctx)
    if table.name == "style_transfers":
        return map_image_table(table, "style-transfer", row, legacy_id, fp, ctx)
    if table.name == "edited_images":
        return map_image_table(table, "image-edit", row, legacy_id, fp, ctx)
    return map_dataset(table, row, legacy_id, keyed, fp, ctx)


def settle(mapped: Mapped, verdict: Verdict | None, ctx: MapContext) -> None:
    """Give an in-flight row its final status from what its worker said.

    Known to the worker: PROCESSING, held by no replica and with its lease already
    expired, so the runner's recovery adopts it and asks the worker what became of it.
    Unknown, unreachable or unaskable: FAILED, "lost during migration". Never PENDING:
    an imported job is never dispatched again.
    """
    if not mapped.in_flight:
        return
    values, legacy = mapped.values, mapped.legacy
    if verdict is not None and verdict.known:
        values.update(
            status="processing", progress=0.0, attempts=1, claimed_by=CLAIMED_BY,
            lease_expires_at=ctx.now, started_at=values["created_at"],
        )  # fmt: skip
    else:
        reason = verdict.detail if verdict is not None else mapped.lost_reason
        values.update(
            status="failed",
            error_message=_join_errors(f"lost during migration: {reason}",
                                       values.get("error_message")),
        )  # fmt: skip
    legacy["worker"] = verdict.detail if verdict is not None else mapped.lost_reason
    legacy["imported_status"] = values["status"]
    mapped.in_flight = False


def record(mapped: Mapped) -> tuple[Any, ...]:
    """The row's values in `write_columns(kind)` order, ready for a binary COPY."""
    values = mapped.values
    if values["status"] not in ("processing", "completed", "failed"):  # never pending
        raise RuntimeError(f"{mapped.legacy_id}: {values['status']!r} is not importable")
    params = dict(mapped.params)
    params["legacy"] = mapped.legacy
    values["parameters"] = orjson.dumps(params).decode()
    values["id"] = time_ordered_uuid(values["created_at"])
    return _RECORD[mapped.kind](values)  # type: ignore[no-any-return]
