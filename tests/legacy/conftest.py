"""A legacy database built from seed 001's columns, full of the rows that break seed
002's migration, a small fake ComfyUI worker, and fresh databases per test (cloned
from templates built once per session)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from comfygraph.db.legacy import ImportReport, Removed
from comfygraph.db.migrate import apply_migrations
from comfygraph.server.legacy import LegacyCommand, import_command, rollback_command
from comfygraph.server.settings import Settings
from tests.dbutil import create_database, database_name, drop_database, with_database
from tests.servers import free_port, serve_in_thread

# What the fake worker knows: one running job, one queued, one finished.
RUNNING, QUEUED, FINISHED = "mt-running-known", "st-queued", "mt-finished-known"


def fake_comfy() -> Starlette:
    """GET /queue and GET /history/{id} as ComfyUI answers them (docs/comfyui-protocol.md 1.3, 1.6);
    /slow/... answers the same after 1.5 s, slower than the tests' worker timeout."""

    async def queue(request: Request) -> JSONResponse:
        if request.path_params.get("slow"):
            await asyncio.sleep(1.5)
        return JSONResponse(
            {"queue_running": [[0, RUNNING, {}, {"client_id": "legacy"}, ["9"]]],
             "queue_pending": [[1, QUEUED, {}, {"client_id": "legacy"}, ["9"]]]}
        )  # fmt: skip

    async def history(request: Request) -> JSONResponse:
        if request.path_params.get("slow"):
            await asyncio.sleep(1.5)
        prompt_id = request.path_params["prompt_id"]
        if prompt_id != FINISHED:
            return JSONResponse({})  # unknown and unfinished look the same
        image = {"filename": "out.mp4", "subfolder": "", "type": "output"}
        entry = {
            "prompt": [0, FINISHED, {}, {}, ["9"]],
            "outputs": {"9": {"images": [image]}},
            "status": {"status_str": "success", "completed": True, "messages": []},
        }
        return JSONResponse({FINISHED: entry})

    return Starlette(
        routes=[
            Route("/queue", queue),
            Route("/history/{prompt_id}", history),
            Route("/{slow:path}/queue", queue),
            Route("/{slow:path}/history/{prompt_id}", history),
        ]
    )


@dataclass(frozen=True)
class Workers:
    live: str
    dead: str  # nothing listens there
    slow: str  # answers after the worker timeout


@pytest.fixture(scope="session")
def workers() -> Iterator[Workers]:
    with serve_in_thread(fake_comfy()) as url:
        yield Workers(live=url, dead=f"http://127.0.0.1:{free_port()}", slow=f"{url}/slow")


LEGACY_SCHEMA = """
-- seed 001's columns. multitalk_jobs has no enforced key: production had rows without
-- a job_id (seed 002 filters them out) and, so, could have duplicates.
CREATE TABLE multitalk_jobs (
    job_id text, status text, timestamp_submitted timestamptz, timestamp_completed timestamptz,
    filename text, subfolder text, image_filename text, audio_filename text,
    width integer NOT NULL, height integer NOT NULL, trim_to_audio boolean, comfy_url text,
    error_message text, video_url text,
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
-- timestamps without a time zone, as a Python datetime.utcnow() backend writes them
CREATE TABLE style_transfers (
    id uuid PRIMARY KEY, created_at timestamp NOT NULL, source_image_url text NOT NULL,
    style_image_url text, prompt text NOT NULL, result_image_url text,
    workflow_name text NOT NULL DEFAULT 'StyleTransfer', model_used text,
    processing_time_seconds integer, user_ip text, status text NOT NULL,
    comfyui_prompt_id text, error_message text, updated_at timestamp);
CREATE TABLE edited_images (
    id uuid PRIMARY KEY, created_at timestamptz NOT NULL, source_image_url text,
    prompt text, result_image_url text, workflow_name text NOT NULL DEFAULT 'image-edit',
    model_used text, processing_time_seconds integer, user_ip text, status text);
-- "schema not examined yet": columns nobody expected
CREATE TABLE datasets (
    dataset_uuid uuid PRIMARY KEY, character_name text, trigger_word text, images jsonb,
    captions jsonb, zip_url text, status text, meta json, tags text[],
    created_at timestamp, size_bytes bigint, thumbnail bytea, "Weird Col" text);
"""


def legacy_rows(w: Workers) -> str:
    return f"""
INSERT INTO multitalk_jobs (job_id, status, timestamp_submitted, timestamp_completed, filename,
    subfolder, image_filename, audio_filename, width, height, trim_to_audio, comfy_url,
    error_message, video_url, created_at, updated_at) VALUES
 ('mt-lip1', 'completed', '2024-03-01 10:00:00+00', '2024-03-01 10:02:30.5+00',
  'MultiTalk_00001.mp4', 'video', 'face.png', 'voice.mp3', 640, 360, true, 'http://gpu-a:8188/',
  NULL, 'https://sb.example/storage/videos/lip1.mp4', '2024-03-01 10:00:00+00',
  '2024-03-01 10:02:31+00'),
 ('mt-multi', 'completed', '2024-03-02 10:00:00+00', '2024-03-02 10:05:00+00', 'MT_00002.mp4', '',
  'duo.png', 'alice.wav,bob.wav', 640, 360, true, 'http://gpu-a:8188', NULL,
  'https://sb.example/storage/videos/multi.mp4', '2024-03-02 10:00:00+00',
  '2024-03-02 10:05:00+00'),
 ('mt-vlip', 'completed', '2024-03-03 10:00:00+00', '2024-03-03 10:01:00+00', 'VL_00001.mp4', '',
  'talk.mp4', 'speech.wav', 720, 1280, false, 'http://gpu-a:8188', NULL,
  'https://sb.example/storage/videos/vlip.mp4', '2024-03-03 10:00:00+00', '2024-03-03 10:01:00+00'),
 ('mt-wan', 'completed', '2024-03-04 10:00:00+00', '2024-03-04 10:09:00+00', 'wan_00001.mp4', '',
  'start.png', NULL, 832, 480, NULL, 'http://gpu-b:8188', NULL,
  'https://sb.example/storage/videos/wan.mp4', '2024-03-04 10:00:00+00', '2024-03-04 10:09:00+00'),
 ('mt-img2img', 'completed', '2024-03-05 10:00:00+00', '2024-03-05 10:00:20+00',
  'ComfyUI_00042_.png', '', 'in.png', NULL, 512, 512, false, 'http://gpu-b:8188', NULL, NULL,
  '2024-03-05 10:00:00+00', '2024-03-05 10:00:20+00'),
 ('mt-img2img-failed', 'error', '2024-03-05 11:00:00+00', '2024-03-05 11:00:05+00', NULL,
  'img2img', 'in2.png', '', 512, 512, false, 'http://gpu-b:8188', 'CUDA out of memory', NULL,
  '2024-03-05 11:00:00+00', '2024-03-05 11:00:05+00'),
 ('mt-weird', 'exploded', '2024-03-06 10:00:00+00', NULL, NULL, NULL, 'x.png', 'x.mp3', 640, 360,
  true, 'http://gpu-a:8188', NULL, NULL, '2024-03-06 10:00:00+00', '2024-03-06 10:00:00+00'),
 ('{RUNNING}', 'processing', '2024-03-07 10:00:00+00', NULL, NULL, NULL, 'r.png', 'r.mp3', 640, 360,
  true, '{w.live}', NULL, NULL, '2024-03-07 10:00:00+00', '2024-03-07 10:00:01+00'),
 ('{FINISHED}', 'submitted', '2024-03-07 11:00:00+00', NULL, NULL, NULL, 'f.png', 'f.mp3', 640, 360,
  true, '{w.live}/', NULL, NULL, '2024-03-07 11:00:00+00', '2024-03-07 11:00:00+00'),
 ('mt-forgotten', 'processing', '2024-03-07 12:00:00+00', NULL, NULL, NULL, 'g.png', 'g.mp3', 640,
  360, true, '{w.live}', NULL, NULL, '2024-03-07 12:00:00+00', '2024-03-07 12:00:00+00'),
 ('mt-dead-worker', 'submitted', '2024-03-07 13:00:00+00', NULL, NULL, NULL, 'd.png', 'd.mp3', 640,
  360, true, '{w.dead}', NULL, NULL, '2024-03-07 13:00:00+00', '2024-03-07 13:00:00+00'),
 ('mt-slow-worker', 'processing', '2024-03-07 14:00:00+00', NULL, NULL, NULL, 's.png', 's.mp3', 640,
  360, true, '{w.slow}', NULL, NULL, '2024-03-07 14:00:00+00', '2024-03-07 14:00:00+00'),
 (NULL, 'submitted', '2024-03-08 10:00:00+00', NULL, NULL, NULL, 'n.png', 'n.mp3', 640, 360, true,
  'http://gpu-a:8188', NULL, NULL, '2024-03-08 10:00:00+00', '2024-03-08 10:00:00+00'),
 (NULL, 'submitted', '2024-03-08 10:00:00+00', NULL, NULL, NULL, 'n.png', 'n.mp3', 640, 360, true,
  'http://gpu-a:8188', NULL, NULL, '2024-03-08 10:00:00+00', '2024-03-08 10:00:07+00'),
 ('  ', 'error', '2024-03-08 11:00:00+00', NULL, NULL, NULL, 'b.png', 'b.mp3', 640, 360, true,
  'http://gpu-a:8188', 'blank id', NULL, '2024-03-08 11:00:00+00', '2024-03-08 11:00:00+00'),
 ('mt-lip1', 'error', '2024-03-09 10:00:00+00', NULL, NULL, NULL, 'dup.png', 'dup.mp3', 640, 360,
  true, 'http://gpu-a:8188', 'double insert', NULL, '2024-03-09 10:00:00+00',
  '2024-03-09 10:00:00+00'),
 ('mt-ünï-🎬', 'error', '2024-03-10 10:00:00+00', NULL, NULL, NULL, 'фото.png', 'голос.mp3', 640,
  360, true, 'http://gpu-a:8188', '失敗しました 🎬 «ошибка» — naïve', NULL,
  '2024-03-10 10:00:00+00', '2024-03-10 10:00:00+00'),
 ('mt-backwards', 'completed', '2024-03-11 10:00:00+00', '2024-03-11 09:59:00+00', 'B.mp4', '',
  'b.png', 'b.mp3', 0, 360, true, 'http://gpu-a:8188', NULL, NULL,
  '2024-03-11 10:00:00+00', '2024-03-11 10:00:00+00'),
 ('mt-no-completion-time', 'completed', '2024-03-12 10:00:00+00', NULL, 'C.mp4', '', 'c.png',
  'c.mp3', 640, 360, true, 'http://gpu-a:8188', NULL, 'https://sb.example/c.mp4',
  '2024-03-12 10:00:00+00', '2024-03-12 10:04:00+00');

INSERT INTO style_transfers (id, created_at, source_image_url, style_image_url, prompt,
    result_image_url, model_used, processing_time_seconds, user_ip, status, comfyui_prompt_id,
    error_message, updated_at) VALUES
 ('00000000-0000-0000-0000-0000000000a1', '2024-04-01 09:00:00', 'https://sb.example/src1.png',
  'https://sb.example/sty1.png', 'in the style of the reference', 'https://sb.example/res1.png',
  'flux', 12, '203.0.113.7', 'completed', 'st-done', NULL, '2024-04-01 09:00:12'),
 ('00000000-0000-0000-0000-0000000000a2', '2024-04-02 09:00:00', 'https://sb.example/src2.png',
  'https://sb.example/sty2.png', 'fails', NULL, 'flux', NULL, '203.0.113.8', 'failed', 'st-fail',
  'node 12 failed', '2024-04-02 09:00:40'),
 ('00000000-0000-0000-0000-0000000000a3', '2024-04-03 09:00:00', 'https://sb.example/src3.png',
  NULL, 'still queued', NULL, NULL, NULL, NULL, 'pending', '{QUEUED}', NULL, '2024-04-03 09:00:00'),
 ('00000000-0000-0000-0000-0000000000a4', '2024-04-04 09:00:00', 'https://sb.example/src4.png',
  NULL, 'Ван Гог 🌻 «звёздная ночь» — 東京の夜', NULL, NULL, 3, NULL, ' COMPLETED ', 'st-4', NULL,
  '2024-04-04 09:00:03');

INSERT INTO edited_images (id, created_at, source_image_url, prompt, result_image_url, model_used,
    processing_time_seconds, user_ip, status) VALUES
 ('00000000-0000-0000-0000-0000000000b1', '2024-05-01 08:00:00+00', 'https://sb.example/e1.png',
  'remove the background', 'https://sb.example/e1-out.png', 'qwen-edit', 7, '198.51.100.1',
  'completed'),
 ('00000000-0000-0000-0000-0000000000b2', '2024-05-02 08:00:00+00', 'https://sb.example/e2.png',
  'make it night', NULL, NULL, NULL, NULL, 'processing'),
 ('00000000-0000-0000-0000-0000000000b3', '2024-05-03 08:00:00+00', NULL, 'no status', NULL, NULL,
  NULL, NULL, NULL);

INSERT INTO datasets (dataset_uuid, character_name, trigger_word, images, captions, zip_url,
    status, meta, tags, created_at, size_bytes, thumbnail, "Weird Col") VALUES
 ('00000000-0000-0000-0000-0000000000c1', 'Zoë', 'zoe_v1',
  '["https://sb.example/z1.png", "https://sb.example/z2.png"]',
  '{{"z1.png": "a woman with red hair, smiling", "z2.png": "la même femme, de profil"}}',
  'https://sb.example/zoe.zip', 'completed', '{{"note": "nul \\u0000 here"}}', '{{a,b}}',
  '2024-06-01 12:00:00', 123456789012, '\\xdeadbeef', 'ü'),
 ('00000000-0000-0000-0000-0000000000c2', 'Ada', NULL, NULL, NULL, NULL, 'ready', NULL, NULL,
  '2024-06-02 12:00:00', NULL, NULL, NULL),
 ('00000000-0000-0000-0000-0000000000c3', 'Bo', NULL, '[]', NULL, NULL, 'processing', NULL, NULL,
  '2024-06-03 12:00:00', NULL, NULL, NULL);
"""


@pytest.fixture(scope="session")
async def legacy(admin_dsn: str, workers: Workers) -> AsyncIterator[str]:
    """The legacy database, built once. Tests only read it (the import never writes to
    its source, which the tests check); a test that changes it uses `legacy_copy`."""
    dsn = await create_database(admin_dsn, "legacy_template")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(LEGACY_SCHEMA)
        await conn.execute(legacy_rows(workers))
    finally:
        await conn.close()
    yield dsn
    await drop_database(admin_dsn, dsn)


@pytest.fixture(scope="session")
async def target_template(admin_dsn: str) -> AsyncIterator[str]:
    dsn = await create_database(admin_dsn, "legacy_target_template")
    conn = await asyncpg.connect(dsn)
    try:
        await apply_migrations(conn)
    finally:
        await conn.close()
    yield dsn
    await drop_database(admin_dsn, dsn)


async def clone(admin_dsn: str, template: str, prefix: str) -> str:
    name = database_name(prefix)
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{urlsplit(template).path[1:]}"')
    finally:
        await conn.close()
    return with_database(admin_dsn, name)


@pytest.fixture
async def legacy_copy(admin_dsn: str, legacy: str) -> AsyncIterator[str]:
    """A fresh copy of the legacy database, for a test that changes the source."""
    dsn = await clone(admin_dsn, legacy, "legacy")
    yield dsn
    await drop_database(admin_dsn, dsn)


@pytest.fixture
async def target(admin_dsn: str, target_template: str) -> AsyncIterator[str]:
    """A fresh migrated comfygraph database for one test."""
    dsn = await clone(admin_dsn, target_template, "legacy_target")
    yield dsn
    await drop_database(admin_dsn, dsn)


# --------------------------------------------------------------------------- helpers

JOB_TABLES = ("video_jobs", "image_jobs", "text_jobs", "audio_jobs")
LEGACY_TABLES = ("multitalk_jobs", "style_transfers", "edited_images", "datasets")


def settings_for(dsn: str, tmp_path: Path) -> Settings:
    return Settings(database_url=dsn, data_dir=tmp_path)


async def run_import(target: str, source: str, tmp_path: Path, *, lines: list[str] | None = None,
                     **options: Any) -> ImportReport:  # fmt: skip
    """The command's own code path (server.legacy), short worker timeouts."""
    options.setdefault("worker_timeout", 0.5)
    cmd = LegacyCommand(source=source, **options)
    sink = lines if lines is not None else []
    return await import_command(settings_for(target, tmp_path), cmd, echo=sink.append)


async def run_rollback(target: str, tmp_path: Path, **options: Any) -> list[Removed]:
    cmd = LegacyCommand(rollback=True, **options)
    return await rollback_command(settings_for(target, tmp_path), cmd, echo=lambda _: None)


async def dump(dsn: str, tables: tuple[str, ...] = JOB_TABLES) -> dict[str, list[str]]:
    """Every row of every table, as text, in a stable order."""
    conn = await asyncpg.connect(dsn)
    try:
        return {
            t: [r[0] for r in await conn.fetch(f"SELECT x::text FROM {t} x ORDER BY x::text")]
            for t in tables
        }
    finally:
        await conn.close()


async def physical_dump(dsn: str) -> dict[str, list[tuple[str, str, str]]]:
    """Each legacy row's location, row version (xmin) and text: equal dumps mean no
    row was rewritten, not even with the same values."""
    conn = await asyncpg.connect(dsn)
    try:
        return {
            t: [
                tuple(r)
                for r in await conn.fetch(
                    f"SELECT ctid::text, xmin::text, x::text FROM {t} x ORDER BY ctid"
                )
            ]
            for t in LEGACY_TABLES
        }
    finally:
        await conn.close()


async def imported(dsn: str, table: str) -> dict[str, dict[str, Any]]:
    """Rows of a job table by legacy_id (jsonb decoded)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.set_type_codec("jsonb", schema="pg_catalog", encoder=str, decoder=json.loads)
        rows = await conn.fetch(f"SELECT * FROM {table} WHERE legacy_id IS NOT NULL")
        return {r["legacy_id"]: dict(r) for r in rows}
    finally:
        await conn.close()


async def execute(dsn: str, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.execute(sql, *args)
    finally:
        await conn.close()
