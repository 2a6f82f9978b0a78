"""Issue 15's session gaps: sessions are settled periodically (one replica at a time)
even when no runner listener heard their jobs end, and musicUrl is an uploaded audio
file, checked like any file input."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from comfygraph.db.sessions import get_session, try_settle_lock
from comfygraph.db.visibility import Viewer
from comfygraph.storage import LocalStorage
from comfygraph.studio.sessions.inputs import SessionSpec
from comfygraph.studio.sessions.sweep import settle_running
from tests.comfy.harness import Recorder
from tests.db.factories import make_user
from tests.sessions.test_settle import generating_session, pipeline


@pytest.fixture
def store(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "files", "http://files.test")


async def test_a_session_nobody_settled_moves_on_with_the_sweep(
    pool: asyncpg.Pool, store: LocalStorage
) -> None:
    # Every job ended (as after cancelJob, or a replica that died before its listener
    # ran) and nothing settled the session: it would wait for the next mutation.
    session_id, _, _ = await generating_session(pool, store, ["completed", "failed"])
    sweeper = pipeline(pool, store, Recorder())
    async with pool.acquire() as conn, conn.transaction():
        assert await try_settle_lock(conn)  # another replica is sweeping
        assert await settle_running(sweeper) is None
    assert await settle_running(sweeper) >= 1  # type: ignore[operator]
    async with pool.acquire() as conn:
        session = await get_session(conn, session_id)
    assert session is not None and session["status"] == "reviewing_images"


async def test_two_replicas_sweep_one_at_a_time(pool: asyncpg.Pool, store: LocalStorage) -> None:
    await generating_session(pool, store, ["completed"])
    a, b = pipeline(pool, store, Recorder()), pipeline(pool, store, Recorder())
    results = await asyncio.gather(*(settle_running(p) for p in (a, b, a, b)))
    assert any(r is not None for r in results)


async def test_music_url_must_be_an_uploaded_audio_file(
    pool: asyncpg.Pool, store: LocalStorage
) -> None:
    async with pool.acquire() as conn:
        user = await make_user(conn)
    viewer = Viewer(user["id"])
    sessions = pipeline(pool, store, Recorder())
    song = await store.put(f"uploads/{user['id'].hex}/song.mp3", b"ID3" + b"\0" * 64)
    other_song = await store.put("uploads/00000000000000000000000000000001/a.mp3", b"ID3")
    picture = await store.put(f"uploads/{user['id'].hex}/pic.png", b"\x89PNG")
    for url in (
        "https://elsewhere.example/song.mp3",
        picture.url,
        "http://files.test/files/no.mp3",
        f"http://files.test/files/uploads/{user['id'].hex}/missing.mp3",
        other_song.url,  # somebody else's upload
    ):
        spec = SessionSpec(user_product_prompt="a mug", music_url=url)
        outcome = await sessions.create(viewer, spec)
        assert [(p.code, p.path) for p in outcome.problems] == [("INVALID_FILE", ("musicUrl",))]
    spec = SessionSpec(
        user_product_prompt="a mug", music_url=song.url, background_music_enabled=True
    )
    outcome = await sessions.create(viewer, spec)
    assert not outcome.problems and outcome.session is not None
    assert outcome.session["music_url"] == song.url
