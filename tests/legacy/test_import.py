"""The import against real databases: a legacy source full of bad rows, a migrated
target, and a fake ComfyUI worker on a real port."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest

from comfygraph.db.jobs import create_job, soft_delete
from comfygraph.db.kinds import OutputType
from comfygraph.db.legacy import TABLES, ImportOptions, LegacyImportError, import_legacy
from comfygraph.db.legacy.target import IMPORT_LOCK_KEY
from comfygraph.db.pool import connect
from comfygraph.db.queue import adopt_expired, claim_next_pending
from comfygraph.server.legacy import WorkerProbe, open_source
from tests.db.factories import make_user
from tests.legacy.conftest import (
    FINISHED,
    JOB_TABLES,
    RUNNING,
    Workers,
    dump,
    execute,
    imported,
    physical_dump,
    run_import,
    run_rollback,
)
from tests.servers import free_port

FIRST = {  # read, imported, updated, unchanged, skipped
    "multitalk_jobs": (19, 18, 0, 0, 1),
    "style_transfers": (4, 4, 0, 0, 0),
    "edited_images": (3, 3, 0, 0, 0),
    "datasets": (3, 3, 0, 0, 0),
}


def counts(report: object) -> dict[str, tuple[int, ...]]:
    return {
        t.source: (t.read, t.imported, t.updated, t.unchanged, t.skipped)
        for t in report.tables  # type: ignore[attr-defined]
    }


def utc(*args: int) -> datetime:
    return datetime(*args).replace(tzinfo=UTC)  # type: ignore[arg-type]


async def test_import_maps_every_row_and_leaves_the_source_untouched(
    legacy: str, target: str, tmp_path: Path, workers: Workers
) -> None:
    source_before = await physical_dump(legacy)
    lines: list[str] = []
    report = await run_import(target, legacy, tmp_path, lines=lines)

    assert report.committed and report.ok
    assert counts(report) == FIRST
    assert lines[0] == (
        "skip multitalk_jobs 'mt-lip1': duplicate job_id: an earlier row with the same key"
        " was imported"
    )
    assert lines[-1] == "count check passed; committed 28 rows"
    assert lines[-2].startswith(f"note: adopted jobs run on {workers.live}, not in COMFY_WORKERS")
    assert await physical_dump(legacy) == source_before  # not a row rewritten

    video = await imported(target, "video_jobs")
    image = await imported(target, "image_jobs")
    text = await imported(target, "text_jobs")
    from_multitalk = [r for r in image.values() if r["legacy_source"] == "multitalk_jobs"]
    assert len(video) + len(from_multitalk) == 18 and len(text) == 3
    everything = [*video.values(), *image.values(), *text.values()]
    assert {r["user_id"] for r in everything} == {None}  # legacy rows have no user ids
    assert {r["public"] for r in everything} == {False}

    # Workflows are inferred, not all 'lipsync-one'; img2img rows live in image_jobs.
    lip = video["mt-lip1"]
    assert lip["workflow_name"] == "lipsync-one" and lip["status"] == "completed"
    assert video["mt-multi"]["workflow_name"] == "lipsync-multi"
    assert video["mt-multi"]["input_audio_urls"] == ["alice.wav", "bob.wav"]
    assert video["mt-vlip"]["workflow_name"] == "video-lipsync"
    assert video["mt-vlip"]["input_video_urls"] == ["talk.mp4"]
    assert video["mt-wan"]["workflow_name"] == "wan-i2v"
    assert image["mt-img2img"]["workflow_name"] == "img2img"
    assert image["mt-img2img-failed"]["workflow_name"] == "img2img"
    assert all(r["parameters"]["legacy"]["workflow_guess"] for r in video.values())

    # The row kept is the first of the duplicates, and the whole source row is kept.
    assert lip["parameters"]["legacy"]["row"]["status"] == "completed"
    assert lip["parameters"]["trim_to_audio"] is True
    assert lip["legacy_source"] == "multitalk_jobs" and lip["comfy_job_id"] == "mt-lip1"
    assert lip["comfy_url"] == "http://gpu-a:8188"
    assert lip["created_at"] == utc(2024, 3, 1, 10)
    assert lip["completed_at"] == utc(2024, 3, 1, 10, 2, 30, 500000)
    assert lip["processing_time_seconds"] == 150.5  # not truncated to an integer
    assert lip["comfyui_output_filename"] == "MultiTalk_00001.mp4"
    assert lip["comfyui_output_subfolder"] == "video" and lip["progress"] == 100

    # NULL files are empty arrays, never {NULL}.
    assert video["mt-wan"]["input_audio_urls"] == []
    assert image["mt-img2img"]["output_image_urls"] == []
    assert all(None not in r[c] for r in video.values() for c in ("input_audio_urls",
               "input_image_urls", "output_video_urls"))  # fmt: skip

    # Unknown and missing statuses fail with a message; none is pending.
    assert video["mt-weird"]["status"] == "failed"
    assert video["mt-weird"]["error_message"].startswith("legacy status 'exploded' is unknown")
    edited = {k[-2:]: v for k, v in image.items() if k.startswith("00000000")}
    assert edited["b3"]["error_message"].startswith("legacy status is missing")

    # In flight at the source: adopted when the worker knows the job, else lost.
    for key in (RUNNING, FINISHED):
        row = video[key]
        assert (row["status"], row["claimed_by"]) == ("processing", "legacy-import")
        assert row["comfy_job_id"] == key and row["comfy_url"] == workers.live
        assert row["lease_expires_at"] < datetime.now(UTC)
    lost = {k: video[k]["error_message"] for k in ("mt-forgotten", "mt-dead-worker",
                                                   "mt-slow-worker")}  # fmt: skip
    assert all(v.startswith("lost during migration: worker") for v in lost.values())
    assert "no longer knows ComfyUI job mt-forgotten" in lost["mt-forgotten"]
    assert "could not be reached" in lost["mt-dead-worker"]
    assert "ReadTimeout" in lost["mt-slow-worker"]
    assert all(video[k]["status"] == "failed" and video[k]["completed_at"] is None for k in lost)

    # Rows without a job id are imported, not dropped: identical ones get ordinals.
    keyless = sorted(k.rsplit(":", 1) for k in video if k.startswith("nokey:"))
    twins = [n for prefix, n in keyless if sum(p == prefix for p, _ in keyless) == 2]
    assert len(keyless) == 3 and twins == ["1", "2"]

    # Non-ASCII text, exactly.
    intl = video["mt-ünï-🎬"]
    assert intl["error_message"] == "失敗しました 🎬 «ошибка» — naïve"
    assert intl["input_image_urls"] == ["фото.png"] and intl["input_audio_urls"] == ["голос.mp3"]
    style = {
        k[-2:]: v for k, v in image.items() if k.startswith("00000000-0000-0000-0000-0000000000a")
    }
    assert style["a4"]["prompt"] == "Ван Гог 🌻 «звёздная ночь» — 東京の夜"

    # Bad values are dropped with a note, not fatal.
    back = video["mt-backwards"]
    assert back["width"] is None and back["processing_time_seconds"] is None
    assert len(back["parameters"]["legacy"]["notes"]) == 2

    # Style transfers: completed_at only when completed; no invented comfy_url.
    assert style["a1"]["completed_at"] == utc(2024, 4, 1, 9, 0, 12)  # naive read as UTC
    assert style["a1"]["created_at"] == utc(2024, 4, 1, 9)
    assert style["a2"]["status"] == "failed" and style["a2"]["completed_at"] is None
    assert style["a4"]["status"] == "completed"
    assert {r["comfy_url"] for r in image.values() if r["workflow_name"] != "img2img"} == {None}
    assert "--comfy-url was not given" in style["a3"]["error_message"]
    assert style["a1"]["input_image_urls"] == ["https://sb.example/src1.png",
                                               "https://sb.example/sty1.png"]  # fmt: skip
    assert style["a3"]["input_image_urls"] == ["https://sb.example/src3.png"]
    assert edited["b1"]["completed_at"] == utc(2024, 5, 1, 8, 0, 7)

    # datasets: whatever columns it has, the whole row kept as JSON.
    zoe = text["00000000-0000-0000-0000-0000000000c1"]
    row = zoe["parameters"]["legacy"]["row"]
    assert (zoe["workflow_name"], zoe["status"]) == ("character-caption", "completed")
    assert row["Weird Col"] == "ü" and row["character_name"] == "Zoë"
    assert row["thumbnail"] == "\\xdeadbeef" and row["size_bytes"] == 123456789012
    assert row["meta"] == {"note": "nul \ufffd here"}  # jsonb cannot hold \u0000
    assert zoe["input_image_urls"] == ["https://sb.example/z1.png", "https://sb.example/z2.png"]
    assert zoe["output_urls"] == ["https://sb.example/zoe.zip"]
    assert "a woman with red hair" in zoe["output_text"]
    ada = text["00000000-0000-0000-0000-0000000000c2"]
    assert ada["status"] == "failed" and "'ready' is unknown" in ada["error_message"]
    assert text["00000000-0000-0000-0000-0000000000c3"]["status"] == "failed"

    # Nothing imported is ever dispatched; the adopted jobs go to the runner's recovery.
    conn = await connect(target)
    try:
        total_pending = 0
        for kind in OutputType:
            total_pending += await conn.fetchval(
                f"SELECT count(*) FROM {kind.table} WHERE status = 'pending'"
            )
        assert total_pending == 0
        assert (
            await claim_next_pending(conn, replica="r", worker_url="http://w", lease_s=30) is None
        )
        adopted = await adopt_expired(conn, replica="r", lease_s=30)
        assert sorted(r["legacy_id"] for _, r in adopted) == sorted([RUNNING, FINISHED])
    finally:
        await conn.close()


async def test_a_second_run_changes_nothing(legacy: str, target: str, tmp_path: Path) -> None:
    await run_import(target, legacy, tmp_path)
    after_first = await dump(target)
    lines: list[str] = []
    report = await run_import(target, legacy, tmp_path, lines=lines)
    assert counts(report) == {s: (r, 0, 0, r - k, k) for s, (r, _, _, _, k) in FIRST.items()}
    assert await dump(target) == after_first  # not even updated_at moved
    assert lines[-1] == "count check passed; committed 0 rows"


async def test_rows_changed_at_the_source_are_updated(
    legacy_copy: str, target: str, tmp_path: Path
) -> None:
    await run_import(target, legacy_copy, tmp_path)
    before = await imported(target, "video_jobs")
    await execute(
        legacy_copy,
        """UPDATE multitalk_jobs SET status = 'completed', video_url = 'https://sb.example/g.mp4',
               timestamp_completed = '2024-03-07 12:03:00+00', updated_at = now()
           WHERE job_id = 'mt-forgotten'""",
    )
    await execute(
        legacy_copy,
        "UPDATE style_transfers SET prompt = 'Моне 🌊' WHERE prompt LIKE 'Ван Гог%'",
    )
    report = await run_import(target, legacy_copy, tmp_path)
    assert counts(report)["multitalk_jobs"] == (19, 0, 1, 17, 1)
    assert counts(report)["style_transfers"] == (4, 0, 1, 3, 0)
    after = await imported(target, "video_jobs")
    row = after["mt-forgotten"]
    assert (row["status"], row["error_message"]) == ("completed", None)
    assert row["output_video_urls"] == ["https://sb.example/g.mp4"]
    assert row["processing_time_seconds"] == 180.0
    assert row["id"] == before["mt-forgotten"]["id"]  # updated in place
    assert {k: v for k, v in after.items() if k != "mt-forgotten"} == {
        k: v for k, v in before.items() if k != "mt-forgotten"
    }
    image = await imported(target, "image_jobs")
    assert image["00000000-0000-0000-0000-0000000000a4"]["prompt"] == "Моне 🌊"


async def test_rows_this_server_took_over_are_kept(
    legacy_copy: str, target: str, tmp_path: Path
) -> None:
    await run_import(target, legacy_copy, tmp_path)
    conn = await connect(target)
    try:
        await adopt_expired(conn, replica="replica-1", lease_s=30)  # the runner's recovery
        wan = (await imported(target, "video_jobs"))["mt-wan"]
        await soft_delete(conn, OutputType.VIDEO, wan["id"])  # a user deleted it
    finally:
        await conn.close()
    await execute(
        legacy_copy,
        f"""UPDATE multitalk_jobs SET status = 'error', error_message = 'gave up'
            WHERE job_id IN ('{RUNNING}', 'mt-wan')""",
    )
    report = await run_import(target, legacy_copy, tmp_path)
    multitalk = report.tables[0]
    assert (multitalk.updated, multitalk.kept) == (0, 2)
    video = await imported(target, "video_jobs")
    assert (video[RUNNING]["status"], video[RUNNING]["claimed_by"]) == ("processing", "replica-1")
    assert video["mt-wan"]["status"] == "completed" and video["mt-wan"]["deleted_at"] is not None


async def test_workflow_map_decides_and_moves_rows_between_tables(
    legacy: str, target: str, tmp_path: Path
) -> None:
    await run_import(target, legacy, tmp_path)
    mapping = tmp_path / "map.csv"
    mapping.write_text("legacy_id,workflow\nmt-wan,img2img\nmt-img2img,wan-i2v\n"
                       "mt-lip1,lipsync-multi\nnot-in-source,lipsync-one\n")  # fmt: skip
    report = await run_import(target, legacy, tmp_path, workflow_map=mapping)
    multitalk = report.tables[0]
    assert (multitalk.imported, multitalk.updated, multitalk.unmapped_ids) == (0, 3, 1)
    video = await imported(target, "video_jobs")
    image = await imported(target, "image_jobs")
    assert "mt-wan" not in video and image["mt-wan"]["workflow_name"] == "img2img"
    assert "mt-img2img" not in image and video["mt-img2img"]["workflow_name"] == "wan-i2v"
    assert video["mt-lip1"]["workflow_name"] == "lipsync-multi"
    legacy_info = video["mt-lip1"]["parameters"]["legacy"]
    assert (legacy_info["workflow_guess"], legacy_info["workflow_reason"]) == (
        False,
        "workflow map",
    )
    again = await run_import(target, legacy, tmp_path, workflow_map=mapping)
    assert counts(again)["multitalk_jobs"] == (19, 0, 0, 18, 1)


async def test_comfy_url_gives_image_rows_their_worker(
    legacy: str, target: str, tmp_path: Path, workers: Workers
) -> None:
    await run_import(target, legacy, tmp_path)
    report = await run_import(target, legacy, tmp_path, comfy_url=workers.live + "/")
    assert counts(report)["style_transfers"] == (4, 0, 4, 0, 0)
    assert counts(report)["multitalk_jobs"][2] == 0  # their workers are their own
    image = await imported(target, "image_jobs")
    queued = image["00000000-0000-0000-0000-0000000000a3"]
    assert (queued["status"], queued["comfy_job_id"]) == ("processing", "st-queued")
    assert {r["comfy_url"] for k, r in image.items() if not k.startswith("mt-")} == {workers.live}


async def test_dry_run_writes_nothing(legacy_copy: str, target: str, tmp_path: Path) -> None:
    before = await dump(target)
    lines: list[str] = []
    report = await run_import(target, legacy_copy, tmp_path, lines=lines, dry_run=True)
    assert counts(report) == FIRST and not report.committed
    assert lines[0].startswith("skip multitalk_jobs 'mt-lip1': duplicate job_id")
    assert "  would write video_jobs: 16 new, 0 updated; image_jobs: 2 new, 0 updated" in lines
    assert lines[-1] == "dry run: nothing was written"
    assert await dump(target) == before

    await run_import(target, legacy_copy, tmp_path)
    after_import = await dump(target)
    await execute(
        legacy_copy, "UPDATE edited_images SET prompt = 'changed' WHERE status = 'completed'"
    )
    report = await run_import(target, legacy_copy, tmp_path, dry_run=True)
    assert counts(report)["edited_images"] == (3, 0, 1, 2, 0)
    assert await dump(target) == after_import


async def test_rollback_removes_exactly_what_the_import_created(
    legacy: str, target: str, tmp_path: Path
) -> None:
    conn = await connect(target)
    try:  # the server's own jobs, which a rollback must not touch
        user = await make_user(conn)
        for kind in (OutputType.VIDEO, OutputType.IMAGE, OutputType.TEXT):
            await create_job(conn, kind, user_id=user["id"], workflow_name="wan-i2v",
                             parameters={"seed": 1})  # fmt: skip
    finally:
        await conn.close()
    before = await dump(target, (*JOB_TABLES, "users"))
    await run_import(target, legacy, tmp_path)

    planned = await run_rollback(target, tmp_path, dry_run=True)
    assert {r.source: r.rows for r in planned} == {
        "multitalk_jobs": 18, "style_transfers": 4, "edited_images": 3, "datasets": 3,
    }  # fmt: skip
    assert sum(len(rows) for rows in (await dump(target)).values()) == 28 + 3

    only = await run_rollback(target, tmp_path, tables="datasets")
    assert [(r.source, r.rows) for r in only] == [("datasets", 3)]
    removed = await run_rollback(target, tmp_path)
    assert {r.source: r.rows for r in removed}["multitalk_jobs"] == 18
    assert await dump(target, (*JOB_TABLES, "users")) == before

    report = await run_import(target, legacy, tmp_path)  # and it can be imported again
    assert counts(report) == FIRST


async def test_unreachable_source_is_one_clear_error(target: str, tmp_path: Path) -> None:
    before = await dump(target)
    port = free_port()
    with pytest.raises(LegacyImportError) as caught:
        await run_import(target, f"postgresql://postgres@127.0.0.1:{port}/legacy", tmp_path)
    message = str(caught.value)
    assert message.startswith(f"cannot reach the legacy source at 127.0.0.1:{port}/legacy")
    assert "\n" not in message
    assert await dump(target) == before


async def test_missing_table_or_column_is_an_error_unless_excluded(
    legacy_copy: str, target: str, tmp_path: Path
) -> None:
    before = await dump(target)
    await execute(legacy_copy, "DROP TABLE datasets")
    with pytest.raises(LegacyImportError, match=r"has no table public\.datasets .*--tables"):
        await run_import(target, legacy_copy, tmp_path)
    assert await dump(target) == before

    report = await run_import(
        target, legacy_copy, tmp_path, tables="multitalk_jobs,style_transfers,edited_images"
    )
    assert [t.source for t in report.tables] == ["multitalk_jobs", "style_transfers",
                                                 "edited_images"]  # fmt: skip
    await execute(legacy_copy, "ALTER TABLE edited_images DROP COLUMN status")
    with pytest.raises(LegacyImportError, match=r"edited_images has no column status"):
        await run_import(target, legacy_copy, tmp_path, tables="edited_images")


async def test_counts_that_do_not_add_up_roll_everything_back(
    legacy: str, target: str, tmp_path: Path
) -> None:
    # A trigger on the target that silently swallows one row: a real fault, not a mock.
    await execute(
        target,
        """CREATE FUNCTION swallow() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN RETURN CASE WHEN NEW.legacy_id = 'mt-img2img' THEN NULL ELSE NEW END; END $$;
           CREATE TRIGGER swallow BEFORE INSERT ON image_jobs
               FOR EACH ROW EXECUTE FUNCTION swallow();""",
    )
    before = await dump(target)
    lines: list[str] = []
    with pytest.raises(LegacyImportError, match="count check failed for multitalk_jobs; the"
                       " import was rolled back"):  # fmt: skip
        await run_import(target, legacy, tmp_path, lines=lines)
    assert any("problem: the job tables hold 17 of its rows, expected 18" in x for x in lines)
    assert await dump(target) == before


async def test_naive_timestamps_follow_the_source_time_zone(
    legacy: str, target: str, tmp_path: Path
) -> None:
    await run_import(target, legacy, tmp_path, tables="style_transfers",
                     source_timezone="Europe/Paris")  # fmt: skip
    image = await imported(target, "image_jobs")
    first = image["00000000-0000-0000-0000-0000000000a1"]
    assert first["created_at"] == utc(2024, 4, 1, 7)  # 09:00 in Paris (CEST)
    assert first["completed_at"] - first["created_at"] == timedelta(seconds=12)


async def test_one_import_at_a_time(legacy: str, target: str, tmp_path: Path) -> None:
    holder = await asyncpg.connect(target)
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", IMPORT_LOCK_KEY)
        with pytest.raises(LegacyImportError, match="another import-legacy run"):
            await run_import(target, legacy, tmp_path)
    finally:
        await holder.close()
    assert await run_import(target, legacy, tmp_path)


async def test_source_session_cannot_write(legacy: str) -> None:
    conn = await open_source(legacy, connect_timeout=5)
    try:
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await conn.execute("DELETE FROM multitalk_jobs")
    finally:
        await conn.close()


async def test_the_data_layer_alone_takes_turns_on_one_target_connection(
    legacy: str, target: str
) -> None:
    """db.legacy.import_legacy without a classifier connection: classifying and
    writing share the one target connection (import, then a re-run)."""
    source = await open_source(legacy, connect_timeout=5)
    conn = await asyncpg.connect(target)
    tables = tuple(TABLES.values())
    try:
        async with httpx.AsyncClient(timeout=0.5) as client:
            probe = WorkerProbe(client)
            first = await import_legacy(source, conn, tables, ImportOptions(), probe=probe)
            again = await import_legacy(source, conn, tables, ImportOptions(), probe=probe)
    finally:
        await source.close()
        await conn.close()
    assert first.committed and counts(first) == FIRST
    assert counts(again) == {s: (r, 0, 0, r - k, k) for s, (r, _, _, _, k) in FIRST.items()}
