"""Seed 002's mapping defects, one by one, on the pure mapping functions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from comfygraph.db.kinds import OutputType
from comfygraph.db.legacy import LegacyImportError, Verdict
from comfygraph.db.legacy.mapping import (
    MapContext,
    fingerprint,
    infer_workflow,
    map_row,
    record,
    settle,
    time_ordered_uuid,
    write_columns,
)
from comfygraph.db.legacy.tables import (
    DATASETS,
    EDITED_IMAGES,
    MULTITALK_JOBS,
    STYLE_TRANSFERS,
    parse_tables,
)
from comfygraph.server.legacy import load_workflow_map

NOW = datetime(2025, 1, 1, tzinfo=UTC)
CTX = MapContext(now=NOW, tz=UTC)


def multitalk(**overrides: Any) -> dict[str, Any]:
    row = {
        "job_id": "j1", "status": "completed", "timestamp_submitted": "2024-01-01T10:00:00+00:00",
        "timestamp_completed": "2024-01-01T10:01:00.25+00:00", "filename": "out.mp4",
        "subfolder": "", "image_filename": "face.png", "audio_filename": "a.mp3", "width": 640,
        "height": 360, "trim_to_audio": True, "comfy_url": "http://gpu:8188",
        "error_message": None, "video_url": "https://x/v.mp4",
        "created_at": "2024-01-01T10:00:00+00:00", "updated_at": "2024-01-01T10:01:01+00:00",
    }  # fmt: skip
    row.update(overrides)
    return row


def style(**overrides: Any) -> dict[str, Any]:
    row = {
        "id": "s1", "created_at": "2024-01-01T09:00:00", "source_image_url": "https://x/s.png",
        "style_image_url": "https://x/t.png", "prompt": "p", "result_image_url": None,
        "processing_time_seconds": None, "status": "failed", "comfyui_prompt_id": "c1",
        "error_message": "boom", "updated_at": "2024-01-01T09:00:30",
    }  # fmt: skip
    row.update(overrides)
    return row


def mapped(table: Any, row: dict[str, Any], ctx: MapContext = CTX, keyed: bool = True) -> Any:
    legacy_id = str(row.get("job_id") or row.get("id") or "k")
    return map_row(table, row, legacy_id, keyed=keyed, fp="fp", ctx=ctx)


def test_absent_files_give_empty_arrays_not_null_elements() -> None:
    m = mapped(MULTITALK_JOBS, multitalk(audio_filename="", image_filename=None, video_url=None,
                                         filename=None))  # fmt: skip
    values = m.values
    assert values["input_image_urls"] == [] and values["input_audio_urls"] == []
    assert values["output_video_urls"] == [] and values["comfyui_output_filename"] is None
    assert values["comfyui_output_type"] is None  # seed 002 said 'output' for every row
    s = mapped(STYLE_TRANSFERS, style(style_image_url=None, result_image_url="  "))
    assert s.values["input_image_urls"] == ["https://x/s.png"]
    assert s.values["output_image_urls"] == []


@pytest.mark.parametrize(
    ("overrides", "workflow"),
    [
        ({}, "lipsync-one"),
        ({"audio_filename": "a.wav,b.wav"}, "lipsync-multi"),
        ({"audio_filename": '["a.wav", "b.wav", "c.wav"]'}, "lipsync-multi"),
        ({"filename": "lipsync_multi_00001.mp4"}, "lipsync-multi"),
        ({"image_filename": "talk.MOV"}, "video-lipsync"),
        ({"audio_filename": None}, "wan-i2v"),
        ({"audio_filename": None, "filename": "ComfyUI_00001_.png", "video_url": None}, "img2img"),
        ({"audio_filename": "", "filename": None, "video_url": "https://x/o.webp?t=1"}, "img2img"),
        ({"audio_filename": None, "filename": None, "video_url": None, "subfolder": "img2img"},
         "img2img"),
    ],
)  # fmt: skip
def test_workflow_is_inferred_from_the_row(overrides: dict[str, Any], workflow: str) -> None:
    assert infer_workflow(multitalk(**overrides))[0] == workflow
    m = mapped(MULTITALK_JOBS, multitalk(**overrides))
    assert m.values["workflow_name"] == workflow
    assert m.legacy["workflow_guess"] is True and m.legacy["workflow_reason"]
    assert m.kind is (OutputType.IMAGE if workflow == "img2img" else OutputType.VIDEO)


def test_img2img_rows_go_to_image_jobs_without_video_columns() -> None:
    m = mapped(MULTITALK_JOBS, multitalk(audio_filename=None, filename="o.png", video_url=None))
    assert m.kind is OutputType.IMAGE
    assert m.values["input_image_urls"] == ["face.png"] and m.values["output_image_urls"] == []
    assert "trim_to_audio" not in m.params
    assert len(record(m)) == len(write_columns(OutputType.IMAGE))


def test_video_input_goes_to_input_video_urls() -> None:
    m = mapped(MULTITALK_JOBS, multitalk(image_filename="talk.mp4"))
    assert m.values["input_video_urls"] == ["talk.mp4"] and m.values["input_image_urls"] == []


def test_workflow_map_decides_exactly() -> None:
    ctx = MapContext(now=NOW, tz=UTC, workflow_map={"j1": "img2img"})
    m = mapped(MULTITALK_JOBS, multitalk(), ctx)
    assert m.values["workflow_name"] == "img2img" and m.kind is OutputType.IMAGE
    assert m.legacy["workflow_guess"] is False and m.legacy["workflow_reason"] == "workflow map"


@pytest.mark.parametrize("status", ["failed", "pending", "processing"])
def test_only_completed_style_transfers_get_completed_at(status: str) -> None:
    m = mapped(STYLE_TRANSFERS, style(status=status))
    assert m.values["completed_at"] is None
    done = mapped(STYLE_TRANSFERS, style(status="completed"))
    assert done.values["completed_at"] == datetime(2024, 1, 1, 9, 0, 30, tzinfo=UTC)
    assert done.values["progress"] == 100


def test_failed_multitalk_rows_get_no_completed_at() -> None:
    m = mapped(MULTITALK_JOBS, multitalk(status="error", error_message="oom"))
    assert m.values["status"] == "failed" and m.values["completed_at"] is None
    assert m.values["error_message"] == "oom"


def test_edited_image_completion_comes_from_its_duration() -> None:
    row = {"id": "e1", "created_at": "2024-01-01T08:00:00+00:00", "status": "completed",
           "processing_time_seconds": 7, "source_image_url": "https://x/e.png"}  # fmt: skip
    m = mapped(EDITED_IMAGES, row)
    assert m.values["completed_at"] == datetime(2024, 1, 1, 8, 0, 7, tzinfo=UTC)
    assert m.values["processing_time_seconds"] == 7.0


@pytest.mark.parametrize("raw", ["exploded", "", None, "cancelled"])
def test_unknown_status_is_failed_with_a_message_never_pending(raw: Any) -> None:
    m = mapped(STYLE_TRANSFERS, style(status=raw, error_message=None))
    assert m.values["status"] == "failed" and not m.in_flight
    assert m.values["error_message"].startswith("legacy status")
    assert (
        "style_transfers knows pending, processing, completed, failed" in m.values["error_message"]
    )


def test_known_statuses_ignore_case_and_blanks() -> None:
    assert mapped(STYLE_TRANSFERS, style(status=" COMPLETED ")).values["status"] == "completed"


def test_in_flight_rows_are_adopted_or_lost_never_pending() -> None:
    m = mapped(MULTITALK_JOBS, multitalk(status="submitted"))
    assert m.in_flight and m.ask == ("http://gpu:8188", "j1")
    with pytest.raises(RuntimeError):
        record(m)  # an unsettled row cannot be written
    settle(m, Verdict(True, "queued"), CTX)
    v = m.values
    assert (v["status"], v["claimed_by"], v["attempts"]) == ("processing", "legacy-import", 1)
    assert v["lease_expires_at"] == NOW and v["comfy_job_id"] == "j1"  # expired: recovery adopts
    assert m.legacy["imported_status"] == "processing"

    lost = mapped(MULTITALK_JOBS, multitalk(status="processing", error_message="was slow"))
    settle(lost, Verdict(False, "worker w no longer knows ComfyUI job j1"), CTX)
    assert lost.values["status"] == "failed"
    assert lost.values["error_message"] == (
        "lost during migration: worker w no longer knows ComfyUI job j1; legacy error: was slow"
    )
    keyless = mapped(MULTITALK_JOBS, multitalk(status="processing"), keyed=False)
    assert keyless.ask is None and keyless.values["comfy_job_id"] is None
    settle(keyless, None, CTX)
    assert "no ComfyUI job id" in keyless.values["error_message"]


def test_image_rows_have_no_worker_unless_one_is_given() -> None:
    m = mapped(STYLE_TRANSFERS, style(status="pending"))
    assert m.values["comfy_url"] is None and m.ask is None
    assert "--comfy-url" in m.lost_reason
    given = MapContext(now=NOW, tz=UTC, comfy_url="http://comfy.internal:8188")
    m = mapped(STYLE_TRANSFERS, style(status="pending"), given)
    assert m.values["comfy_url"] == "http://comfy.internal:8188"
    assert m.ask == ("http://comfy.internal:8188", "c1")


def test_durations_are_exact_and_never_negative() -> None:
    m = mapped(MULTITALK_JOBS, multitalk())
    assert m.values["processing_time_seconds"] == 60.25  # not ::INTEGER
    back = mapped(MULTITALK_JOBS, multitalk(timestamp_completed="2024-01-01T09:59:00+00:00"))
    assert back.values["processing_time_seconds"] is None
    assert any("before it was submitted" in n for n in back.legacy["notes"])
    assert (
        mapped(STYLE_TRANSFERS, style(processing_time_seconds=-3)).values["processing_time_seconds"]
        is None
    )


def test_naive_timestamps_are_read_in_the_source_time_zone() -> None:
    utc = mapped(STYLE_TRANSFERS, style())
    assert utc.values["created_at"] == datetime(2024, 1, 1, 9, tzinfo=UTC)
    ny = MapContext(now=NOW, tz=ZoneInfo("America/New_York"))
    m = mapped(STYLE_TRANSFERS, style(), ny)
    assert m.values["created_at"] == datetime(2024, 1, 1, 14, tzinfo=UTC)
    aware = mapped(MULTITALK_JOBS, multitalk(), ny)  # an offset is never overridden
    assert aware.values["created_at"] == datetime(2024, 1, 1, 10, tzinfo=UTC)
    garbage = mapped(STYLE_TRANSFERS, style(created_at="yesterday", updated_at=None))
    assert garbage.values["created_at"] == NOW and garbage.legacy["notes"]


def test_bad_sizes_are_dropped_not_fatal() -> None:
    m = mapped(MULTITALK_JOBS, multitalk(width=0, height="abc"))
    assert m.values["width"] is None and m.values["height"] is None
    assert len(m.legacy["notes"]) == 2


def test_user_id_is_never_guessed() -> None:
    m = mapped(MULTITALK_JOBS, multitalk())
    assert "user_id" not in write_columns(m.kind)


def test_datasets_keep_the_whole_row_and_map_what_they_can() -> None:
    row = {"dataset_uuid": "d1", "Status": "Completed", "captions": {"a.png": "x\x00y"},
           "images": ["https://x/a.png", {"nested": 1}], "zip_url": "https://x/d.zip",
           "created_at": "2024-06-01T12:00:00", "odd": [1, 2]}  # fmt: skip
    m = mapped(DATASETS, row)
    v = m.values
    assert (m.kind, v["workflow_name"], v["status"]) == (OutputType.TEXT, "character-caption",
                                                         "completed")  # fmt: skip
    assert "\x00" not in v["output_text"]  # NUL is not valid in PostgreSQL text
    assert v["output_text"].startswith('{"a.png":')
    assert v["input_image_urls"] == ["https://x/a.png"] and v["output_urls"] == ["https://x/d.zip"]
    assert m.legacy["row"] is row
    no_status = mapped(DATASETS, {"id": "d2"})
    assert no_status.values["status"] == "completed" and no_status.legacy["status_guess"]


def test_non_ascii_text_is_kept_exactly() -> None:
    text = "Ван Гог 🌻 «звёздная ночь» — 東京の夜 e\u0301"
    assert mapped(STYLE_TRANSFERS, style(prompt=text)).values["prompt"] == text


def test_fingerprint_follows_what_the_row_is_made_from() -> None:
    base = fingerprint(MULTITALK_JOBS, "{}", "j1", CTX)
    assert base == fingerprint(MULTITALK_JOBS, "{}", "j1", CTX)
    assert base != fingerprint(MULTITALK_JOBS, '{"a":1}', "j1", CTX)
    mapped_ctx = MapContext(now=NOW, tz=UTC, workflow_map={"j1": "wan-i2v"})
    assert base != fingerprint(MULTITALK_JOBS, "{}", "j1", mapped_ctx)
    url_ctx = MapContext(now=NOW, tz=UTC, comfy_url="http://c")
    assert base == fingerprint(MULTITALK_JOBS, "{}", "j1", url_ctx)  # not an image table
    assert fingerprint(STYLE_TRANSFERS, "{}", "s", CTX) != fingerprint(
        STYLE_TRANSFERS, "{}", "s", url_ctx
    )


def test_ids_are_version_7_and_time_ordered() -> None:
    a = uuid.UUID(time_ordered_uuid(datetime(2024, 1, 1, tzinfo=UTC)))
    b = uuid.UUID(time_ordered_uuid(datetime(2024, 1, 1, 0, 0, 1, tzinfo=UTC)))
    assert a.version == 7 and a.variant == uuid.RFC_4122 and a < b


def test_workflow_map_file(tmp_path: Path) -> None:
    good = tmp_path / "map.csv"
    good.write_text('legacy_id,workflow\n# comment\nj1, img2img\n\n"j,2",wan-i2v\n')
    assert load_workflow_map(good) == {"j1": "img2img", "j,2": "wan-i2v"}
    bad = tmp_path / "bad.csv"
    bad.write_text("j1,lipsync-one\nj2,style-transfer\n")
    with pytest.raises(LegacyImportError, match=r"bad.csv:2: unknown workflow 'style-transfer'"):
        load_workflow_map(bad)
    twice = tmp_path / "twice.csv"
    twice.write_text("j1,lipsync-one\nj1,img2img\n")
    with pytest.raises(LegacyImportError, match="mapped twice"):
        load_workflow_map(twice)


def test_tables_option() -> None:
    assert [t.name for t in parse_tables("datasets, multitalk_jobs")] == [
        "multitalk_jobs", "datasets",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="unknown legacy table"):
        parse_tables("multitalk_jobs,users")
