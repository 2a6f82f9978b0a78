"""Compiled execution answers exactly as the interpreter: hypothesis writes documents
over the subset the compiler knows (feeds, job, node, nodes, session, me; every job
field, owner, outputs, pageInfo, cursors; sessions' and assets' fields and their
nested assets, jobs, cost lines; users' fields; __typename, fragments on the unions
and the interfaces, aliases, variables, @include/@skip, and bad arguments, ids and
cursors) over jobs, sessions and assets of several owners, and each is posted to a
server with compiled plans and to one without, for an anonymous viewer, an owner,
another user and an admin; the two response bodies must be the same bytes."""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from comfygraph.db.assets import create_asset
from comfygraph.db.costs import record_cost
from comfygraph.db.jobs import create_job, soft_delete
from comfygraph.db.kinds import OutputType
from comfygraph.db.retention import set_storage_quota
from comfygraph.db.sessions import create_session, soft_delete_session
from comfygraph.db.webhooks import user_secret
from comfygraph.schema.pagination import CursorCodec, CursorKind
from comfygraph.server.app import create_app
from comfygraph.server.settings import Settings
from comfygraph.studio.auth import issue_token
from tests.db.factories import make_user
from tests.graphql.client import gid
from tests.servers import serve_in_thread

SECRET = "compiled-secret-0123456789-abcdef"
BASE = datetime(2026, 3, 1, tzinfo=UTC)
TYPE_NAMES = {
    OutputType.VIDEO: "VideoJob",
    OutputType.IMAGE: "ImageJob",
    OutputType.TEXT: "TextJob",
    OutputType.AUDIO: "AudioJob",
}
SPECIFIC = {
    "VideoJob": ["inputImageUrls", "inputAudioUrls", "inputVideoUrls", "outputVideoUrls",
                 "width", "height", "fps", "durationSeconds"],
    "ImageJob": ["inputImageUrls", "prompt", "outputImageUrls", "width", "height"],
    "TextJob": ["inputImageUrls", "prompt", "outputText", "outputUrls"],
    "AudioJob": ["inputAudioUrls", "outputAudioUrls", "durationSeconds", "sampleRate"],
}  # fmt: skip
COMMON = ["id", "outputType", "workflowName", "status", "progress", "parameters", "public",
          "createdAt", "startedAt", "completedAt", "processingTimeSeconds", "errorMessage",
          "comfyJobId", "comfyUrl", "costUsd", "queuePosition", "pinned", "expiredAt",
          "expiresAt"]  # fmt: skip
OUTPUT = ["kind", "url", "filename", "mimeType", "node", "width", "height",
          "durationSeconds", "sizeBytes", "__typename"]  # fmt: skip
USER = ["id", "email", "fullName", "role", "createdAt", "__typename", "displayName",
        "storageUsedBytes", "storageQuotaBytes", "webhookSecret"]  # fmt: skip
# `status` of sessions and assets is another enum than a job's: the two do not merge
# under node(), so these pools leave it out (sessionStatus / assetStatus say it).
SESSION = ["id", "sessionStatus", "currentStage", "progressPercentage", "productCategory",
           "userProductPrompt", "userVideoPrompt", "consistencySeed", "styleKeywords",
           "productName", "callToAction", "textColor", "textFont", "backgroundMusicEnabled",
           "musicGenre", "musicUrl", "numImagesRequested", "clipDurationSeconds", "totalCost",
           "estimatedCost", "errorMessage", "retryCount", "createdAt", "updatedAt",
           "completedAt", "metadata", "__typename"]  # fmt: skip
ASSET = ["id", "type", "source", "assetStatus", "url", "storagePath", "fileSizeBytes",
         "mimeType", "resolution", "durationSeconds", "fps", "generationCost",
         "generationTimeSeconds", "modelVersion", "viewType", "seed", "guidanceScale",
         "scenePrompt", "cameraMovement", "motionIntensity", "generationPrompt",
         "negativePrompt", "userSelected", "selectionOrder", "createdAt", "metadata",
         "__typename"]  # fmt: skip
FEEDS = {"jobs": None, "videoJobs": "VideoJob", "imageJobs": "ImageJob",
         "textJobs": "TextJob", "audioJobs": "AudioJob"}  # fmt: skip
OURS = "http://127.0.0.1:8000/files"  # the servers' storage: these URLs are signed
OUTPUTS = [
    {"kind": "image", "url": f"{OURS}/workflows/w/1/stored.png", "mimeType": "image/png"},
    {"kind": "image", "url": "http://f/a.png", "filename": "a.png", "mimeType": "image/png",
     "node": "9", "width": 64, "height": 48},
    {"kind": "VIDEO", "url": "http://f/v.mp4", "mime_type": "video/mp4", "duration_seconds": 2,
     "size_bytes": 1024},
    {"kind": "audio", "url": "http://f/s.wav", "durationSeconds": 1.5},
    {"kind": "text", "url": "http://f/t.txt", "node": 12},
    {"kind": "weird", "url": "http://f/dir/x.bin", "width": True, "height": "tall"},
    {"url": 5}, "not an object", {"kind": "image", "url": "http://f/big.png", "width": 2**40},
]  # fmt: skip


async def _world(conn: asyncpg.Connection) -> dict[str, Any]:
    rng = random.Random(14)
    users = {name: await make_user(conn, role=role)
             for name, role in (("alice", "user"), ("bob", "user"), ("admin", "admin"),
                                ("gone", "user"))}  # fmt: skip
    await conn.execute("UPDATE users SET deleted_at = now() WHERE id = $1", users["gone"]["id"])
    owners = [users["alice"]["id"], users["bob"]["id"], users["gone"]["id"], None]
    jobs: list[tuple[OutputType, Any]] = []
    for i in range(48):
        kind = list(OutputType)[i % 4]
        status = rng.choice(["pending", "processing", "completed", "failed", "cancelled"])
        full = rng.random() < 0.5  # every nullable column set, or left null
        if i % 13 == 7:  # past its retention (issue 15), without drawing from rng
            status = "expired"
        extra: dict[str, Any] = {}
        if full:
            extra = {"started_at": BASE, "completed_at": BASE + timedelta(seconds=3),
                     "processing_time_seconds": 3.25, "error_message": "boom",
                     "comfy_url": "http://gpu:8188", "cost_usd": 0.012345}  # fmt: skip
            extra |= {
                "pinned": i % 2 == 0,
                "retention_days": 3 if i % 3 else None,
                "expired_at": BASE + timedelta(days=1) if status == "expired" else None,
            }
            for col, value in {"width": 512, "height": 768, "fps": 24, "duration_seconds": 4.0,
                               "sample_rate": 44100, "prompt": "a cat",
                               "output_text": "caption",
                               "input_image_urls": ["http://i/1", f"{OURS}/uploads/u/in.png"],
                               "output_urls": ["http://o/1"]}.items():  # fmt: skip
                if col in _columns(kind):
                    extra[col] = value
        row, _ = await create_job(
            conn, kind, user_id=owners[i % 4], workflow_name=f"wf-{i % 3}",
            parameters={"i": i, "nested": {"x": [1, None]}, "image": f"{OURS}/uploads/u/p.png"}
            if i % 5 else {},
            public=i % 3 == 0, status=status, progress=100.0 if status == "completed" else i,
            created_at=BASE + timedelta(seconds=i // 3, microseconds=i % 3),
            comfy_job_id=f"p-{i}" if full else None,
            outputs=rng.sample(OUTPUTS, rng.randrange(len(OUTPUTS))), **extra,
        )  # fmt: skip
        if i % 11 == 5:
            row = await soft_delete(conn, kind, row["id"])
        jobs.append((kind, row))
    sessions, assets = await _sessions(conn, users, jobs)
    await user_secret(conn, users["alice"]["id"], "whsec_alice")
    await set_storage_quota(conn, users["bob"]["id"], 5000)
    return {"users": users, "jobs": jobs, "sessions": sessions, "assets": assets}


async def _sessions(
    conn: asyncpg.Connection, users: dict[str, Any], jobs: list[tuple[OutputType, Any]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Sessions of several owners (one deleted, one of a deleted user), full and
    empty; assets of every type with null and set fields, a 64-bit seed, a stored URL
    (signed), a source image, a job link, a deleted one; jobs that belong to sessions."""
    alice, bob, gone = (users[n]["id"] for n in ("alice", "bob", "gone"))
    full = {"current_stage": "images", "progress_percentage": 40, "product_category": "footwear",
            "user_product_prompt": "red shoes", "user_video_prompt": "on a beach",
            "consistency_seed": 12345, "style_keywords": ["bright", "bold"],
            "product_name": "Zoom", "call_to_action": "Buy", "text_color": "#FFAA00",
            "text_font": "Inter", "background_music_enabled": True, "music_genre": "pop",
            "music_url": f"{OURS}/uploads/u/m.mp3", "estimated_cost": 1.5,
            "num_images_requested": 4, "clip_duration_seconds": 2.5, "error_message": "x",
            "retry_count": 2, "completed_at": BASE, "metadata": {"estimate": {"n": 3}}}  # fmt: skip
    sessions = {
        "alice-full": await create_session(conn, user_id=alice, **full),
        "alice-empty": await create_session(conn, user_id=alice),
        "bob": await create_session(conn, user_id=bob, product_category="other"),
        "gone": await create_session(conn, user_id=gone),
        "deleted": await create_session(conn, user_id=alice),
    }
    await conn.execute(
        "UPDATE sessions SET status = 'generating_images', total_cost = 0.25 WHERE id = $1",
        sessions["alice-full"]["id"],
    )
    await soft_delete_session(conn, sessions["deleted"]["id"])
    made: dict[str, Any] = {}
    for name in ("alice-full", "bob", "deleted"):
        sid = sessions[name]["id"]
        image = await create_asset(
            conn, session_id=sid, type="image", status="approved",
            url=f"{OURS}/sessions/s/front.png", storage_path="s/front.png",
            file_size_bytes=2048, mime_type="image/png", resolution="512x512",
            generation_cost=0.01, generation_time_seconds=1.25, model_version="sdxl",
            view_type="front", seed=2**40, guidance_scale=7.5, generation_prompt="shoe",
            negative_prompt="blur", user_selected=True, selection_order=2,
            metadata={"k": [1, 2]},
        )  # fmt: skip
        made[f"{name}-image"] = image
        made[f"{name}-side"] = await create_asset(
            conn, session_id=sid, type="image", status="generating", url="http://x/side.png",
            seed=7, user_selected=True,
        )  # fmt: skip
        made[f"{name}-first"] = await create_asset(
            conn, session_id=sid, type="image", status="completed", user_selected=True,
            selection_order=1,
        )  # fmt: skip
        kind, job = next((k, r) for k, r in jobs if r["user_id"] == sessions[name]["user_id"])
        made[f"{name}-clip"] = await create_asset(
            conn, session_id=sid, type="video_clip", status="completed",
            source_image_id=image["id"], duration_seconds=2.5, fps=24, scene_prompt="walk",
            camera_movement="pan", motion_intensity=0.5, job_id=job["id"],
            job_output_type=kind.value,
        )  # fmt: skip
        made[f"{name}-final"] = await create_asset(
            conn, session_id=sid, type="final_video", status="completed", url="http://x/f.mp4"
        )
        dropped = await create_asset(conn, session_id=sid, type="audio", status="failed")
        await conn.execute("UPDATE assets SET deleted_at = now() WHERE id = $1", dropped["id"])
        made[f"{name}-dropped"] = dropped
    for name, category, amount, provider, latency in (
        ("alice-full", "image_generation", 0.02, "gpu-1", 120),
        ("alice-full", "image_generation", 0.03, "gpu-1", None),
        ("alice-full", "llm", 0.001, None, None),
        ("bob", "video_generation", 0.5, "gpu-2", 900),
    ):
        await record_cost(
            conn, category=category, amount=amount, session_id=sessions[name]["id"],
            provider=provider, api_latency_ms=latency,
        )  # fmt: skip
    # bob's session names alice's final video: seen through alice's session only
    await conn.execute(
        "UPDATE sessions SET final_video_id = $2 WHERE id = $1",
        sessions["bob"]["id"], made["alice-full-final"]["id"],
    )  # fmt: skip
    for i, (kind, job) in enumerate(jobs):
        owner = job["user_id"]
        target = {alice: "alice-full", bob: "bob"}.get(owner) if i % 3 else None
        if target:
            await conn.execute(
                f"UPDATE {kind.table} SET session_id = $2 WHERE id = $1",
                job["id"], sessions[target]["id"],
            )  # fmt: skip
    return sessions, made


def _columns(kind: OutputType) -> frozenset[str]:
    from comfygraph.db.kinds import writable_columns

    return writable_columns(kind)


@pytest.fixture(scope="module")
async def world(pool: asyncpg.Pool) -> dict[str, Any]:
    async with pool.acquire() as conn:
        return await _world(conn)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory, dsn: str) -> Iterator[dict[str, Any]]:
    """Two servers on one database: compiled plans on, and off."""
    made: dict[str, Any] = {}
    with contextlib_exit() as stack:
        for name, compiled in (("compiled", True), ("interpreted", False)):
            data = Path(tmp_path_factory.mktemp(name))
            app = create_app(
                Settings(database_url=dsn, data_dir=data, jwt_secret=SECRET,
                         compiled_queries=compiled, storage_quota_bytes=10**9), dsn=dsn,
            )  # fmt: skip
            view = next(r.endpoint for r in app.routes if getattr(r, "path", "") == "/graphql")
            made[name] = (stack.enter_context(serve_in_thread(app)), view)
        yield made


def contextlib_exit() -> Any:
    import contextlib

    return contextlib.ExitStack()


@pytest.fixture(scope="module")
def clients(servers: dict[str, Any], world: dict[str, Any]) -> Iterator[dict[str, Any]]:
    tokens: dict[str, str | None] = {"anonymous": None}
    for name in ("alice", "bob", "admin"):
        row = world["users"][name]
        tokens[name] = issue_token(SECRET, row["id"], role=row["role"])
    made = {}
    for viewer, token in tokens.items():
        headers = {"authorization": f"Bearer {token}"} if token else {}
        made[viewer] = tuple(
            httpx.Client(base_url=servers[side][0], headers=headers, timeout=30)
            for side in ("compiled", "interpreted")
        )
    yield made
    for pair in made.values():
        for client in pair:
            client.close()


# --- documents ---------------------------------------------------------------------

NAMES = st.sampled_from(["a", "b", "c"])


@st.composite
def _field(draw: st.DrawFn, name: str) -> str:
    alias = draw(st.one_of(st.none(), NAMES))
    directive = draw(st.sampled_from(["", "", "", " @include(if: $flag)", " @skip(if: $flag)",
                                      " @include(if: true)", " @skip(if: true)"]))  # fmt: skip
    # Aliases of one field name only: two fields under one key must be the same field.
    return f"{name + '_' + alias + ': ' if alias else ''}{name}{directive}"


@st.composite
def _job_fields(draw: st.DrawFn, type_name: str | None, depth: int = 0) -> str:
    """A selection on a job: `type_name` None is the interface's fields only."""
    pool = COMMON + (SPECIFIC[type_name] if type_name else []) + ["__typename"]
    names = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=6, unique=True))
    parts = [draw(_field(n)) for n in names]
    if draw(st.booleans()):
        sub = draw(st.lists(st.sampled_from(USER), min_size=1, max_size=4, unique=True))
        parts.append(f"owner {{ {' '.join(sub)} }}")
    if draw(st.booleans()):
        sub = draw(st.lists(st.sampled_from(OUTPUT), min_size=1, max_size=5, unique=True))
        parts.append(f"outputs {{ {' '.join(sub)} }}")
    return " ".join(parts)


@st.composite
def _node_selection(draw: st.DrawFn, concrete: str | None) -> str:
    """A selection on a feed's node: the Job union (concrete None) or one job type."""
    parts = ["__typename"] if draw(st.booleans()) else []
    if concrete is not None and draw(st.booleans()):
        parts.append(draw(_job_fields(concrete)))
    if draw(st.booleans()) or not parts:
        parts.append(f"... on GenerationJob {{ {draw(_job_fields(None))} }}")
    targets = [concrete] if concrete else list(SPECIFIC)
    for type_name in draw(st.lists(st.sampled_from(targets), max_size=2, unique=True)):
        parts.append(f"... on {type_name} {{ {draw(_job_fields(type_name))} }}")
    if draw(st.booleans()):
        parts.append("...Common")
    return " ".join(parts)


@st.composite
def _feed(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(list(FEEDS)))
    args = []
    first = draw(st.sampled_from([None, "1", "3", "20", "$first", "0", "101", "null"]))
    if first:
        args.append(f"first: {first}")
    if draw(st.booleans()):
        args.append("after: $after")
    filters = []
    if draw(st.booleans()):
        filters.append(f"scope: {draw(st.sampled_from(['MINE', 'PUBLIC', 'ALL']))}")
    if draw(st.booleans()):
        picked = draw(st.lists(st.sampled_from(["VIDEO", "IMAGE", "TEXT", "AUDIO"]), max_size=2))
        filters.append(f"outputTypes: [{', '.join(picked)}]")
    if draw(st.booleans()):
        filters.append("statuses: [COMPLETED, PENDING]")
    if draw(st.booleans()):
        filters.append('workflowNames: ["wf-1", "wf-2"]')
    if filters:
        args.append(f"filter: {{ {', '.join(filters)} }}")
    parts = []
    if draw(st.booleans()):
        edge = ["cursor"] if draw(st.booleans()) else []
        edge += ["__typename"] if draw(st.booleans()) else []
        edge.append(f"node {{ {draw(_node_selection(FEEDS[name]))} }}")
        parts.append(f"edges {{ {' '.join(edge)} }}")
    info = draw(st.lists(st.sampled_from(["hasNextPage", "endCursor", "hasPreviousPage",
                                          "startCursor", "__typename"]), max_size=4,
                         unique=True))  # fmt: skip
    if info or not parts:
        parts.append(f"pageInfo {{ {' '.join(info or ['hasNextPage'])} }}")
    if draw(st.booleans()):
        parts.append("totalCount")
    if draw(st.booleans()):
        parts.append("__typename")
    alias = draw(st.sampled_from(["", "", "f1: ", "f2: "]))
    return f"{alias}{name}{'(' + ', '.join(args) + ')' if args else ''} {{ {' '.join(parts)} }}"


@st.composite
def _some(draw: st.DrawFn, pool: list[str], max_size: int = 5) -> str:
    names = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=max_size, unique=True))
    return " ".join(draw(_field(n)) for n in names)


@st.composite
def _asset_fields(draw: st.DrawFn, nested: bool) -> str:
    parts = [draw(_some(ASSET))]
    if nested:
        if draw(st.booleans()):
            parts.append(f"session {{ {draw(_session_fields(False))} }}")
        if draw(st.booleans()):
            parts.append(f"sourceImage {{ {draw(_some(ASSET, 3))} }}")
        if draw(st.booleans()):
            parts.append(
                f"job {{ __typename ... on GenerationJob {{ {draw(_job_fields(None))} }} }}"
            )
    return " ".join(parts)


@st.composite
def _session_fields(draw: st.DrawFn, nested: bool) -> str:
    parts = [draw(_some(SESSION))]
    if draw(st.booleans()):
        parts.append(f"{draw(_field('owner'))} {{ {draw(_some(USER, 4))} }}")
    if nested:
        if draw(st.booleans()):
            args = draw(st.sampled_from(ASSET_ARGS))
            parts.append(f"assets{args} {{ {draw(_asset_fields(True))} }}")
        if draw(st.booleans()):
            parts.append(f"moodBoard {{ {draw(_some(ASSET, 3))} }}")
        if draw(st.booleans()):
            parts.append(f"costBreakdown {{ {draw(_some(COST_LINE, 3))} }}")
        if draw(st.booleans()):
            parts.append(f"finalVideo {{ {draw(_asset_fields(False))} }}")
        if draw(st.booleans()):
            args = draw(st.sampled_from(["", "(first: 2)", "(first: $first, after: $after)",
                                         "(first: 0)", "(first: 500)"]))  # fmt: skip
            node = draw(_node_selection(None))
            extra = draw(st.sampled_from(["", "totalCount", "pageInfo { hasNextPage endCursor }"]))
            parts.append(f"jobs{args} {{ edges {{ cursor node {{ {node} }} }} {extra} }}")
    return " ".join(parts)


@st.composite
def _node_fields(draw: st.DrawFn) -> str:
    """A selection on the Node interface: any of the types an id may name."""
    inner = ["id", "__typename"]
    if draw(st.booleans()):
        inner.append(f"... on GenerationJob {{ {draw(_job_fields(None))} }}")
    if draw(st.booleans()):
        inner.append(f"... on Session {{ {draw(_session_fields(draw(st.booleans())))} }}")
    if draw(st.booleans()):
        inner.append(f"... on Asset {{ {draw(_asset_fields(draw(st.booleans())))} }}")
    if draw(st.booleans()):
        inner.append(f"... on User {{ {draw(_some(USER))} }}")
    return " ".join(inner)


@st.composite
def _single(draw: st.DrawFn) -> str:
    root = draw(st.sampled_from(["job", "node", "nodes", "session", "me"]))
    alias = draw(st.sampled_from(["", "one: "]))
    if root == "job":
        return f"{alias}job(id: $id) {{ {draw(_node_selection(None))} }}"
    if root == "node":
        return f"{alias}node(id: $id) {{ {draw(_node_fields())} }}"
    if root == "nodes":
        return f"{alias}nodes(ids: $ids) {{ {draw(_node_fields())} }}"
    if root == "session":
        return f"{alias}session(id: $sid) {{ {draw(_session_fields(True))} }}"
    return f"{alias}me {{ {draw(_some(USER))} }}"


ID_NAMES = ["job", "deleted", "private", "wrong-type", "session", "missing", "malformed",
            "session-alice", "session-bob", "session-deleted", "session-gone", "asset-alice",
            "asset-bob", "asset-deleted-session", "asset-dropped", "user-alice", "user-bob",
            "user-gone", "webhook"]  # fmt: skip
COST_LINE = ["category", "provider", "apiCalls", "totalCost", "avgLatencyMs", "__typename"]
ASSET_ARGS = ["", "(type: IMAGE)", "(status: APPROVED)", "(type: $assetType)",
              "(type: VIDEO_CLIP, status: COMPLETED)"]  # fmt: skip
DECLARED = {"$first": "Int", "$after": "String", "$id": "ID!", "$flag": "Boolean!",
            "$ids": "[ID!]!", "$sid": "ID!", "$assetType": "AssetType"}  # fmt: skip


@st.composite
def documents(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    roots = draw(st.lists(st.one_of(_feed(), _single()), min_size=1, max_size=2))
    if draw(st.booleans()):
        roots.append("__typename")
    body = " ".join(roots)
    used = ", ".join(f"{v}: {t}" for v, t in DECLARED.items() if re.search(rf"\{v}\b", body))
    query = f"query Q{'(' + used + ')' if used else ''} {{ {body} }}"
    if "...Common" in body:
        query += "\nfragment Common on GenerationJob { id status createdAt owner { email } }"
    variables = {
        "first": draw(st.sampled_from([None, 2, 5, 100, -1])),
        "after": draw(st.sampled_from(["none", "valid", "deleted", "garbage", "other-kind"])),
        "id": draw(st.sampled_from(ID_NAMES)),
        "ids": ["too-many"] if draw(st.integers(0, 9)) == 0
        else draw(st.lists(st.sampled_from(ID_NAMES), max_size=5)),
        "sid": draw(st.sampled_from(["session-alice", "session-empty", "session-bob",
                                     "session-gone", "session-deleted", "session", "malformed",
                                     "job"])),
        "assetType": draw(st.sampled_from([None, "IMAGE", "FINAL_VIDEO"])),
        "flag": draw(st.booleans()),
    }  # fmt: skip
    return query, variables


def _resolve(world: dict[str, Any], variables: dict[str, Any]) -> dict[str, Any]:
    codec = CursorCodec(SECRET)
    jobs = world["jobs"]
    live = [(k, r) for k, r in jobs if r["deleted_at"] is None]
    deleted = next((k, r) for k, r in jobs if r["deleted_at"] is not None)
    private = next((k, r) for k, r in live if not r["public"])
    kind, row = live[7]
    after = {
        "none": None,
        "valid": codec.encode(CursorKind.JOBS, row["created_at"], row["id"]),
        "deleted": codec.encode(CursorKind.JOBS, deleted[1]["created_at"], deleted[1]["id"]),
        "garbage": "not-a-cursor!",
        "other-kind": codec.encode(CursorKind.SESSIONS, row["created_at"], row["id"]),
    }[variables["after"]]
    other = OutputType.IMAGE if kind is not OutputType.IMAGE else OutputType.TEXT
    sessions, assets, users = world["sessions"], world["assets"], world["users"]
    ids = {
        "job": gid(TYPE_NAMES[kind], row["id"]),
        "deleted": gid(TYPE_NAMES[deleted[0]], deleted[1]["id"]),
        "private": gid(TYPE_NAMES[private[0]], private[1]["id"]),
        "wrong-type": gid(TYPE_NAMES[other], row["id"]),
        "session": gid("Session", uuid.uuid4()),
        "missing": gid("ImageJob", uuid.uuid4()),
        "malformed": "%%%",
        "session-alice": gid("Session", sessions["alice-full"]["id"]),
        "session-empty": gid("Session", sessions["alice-empty"]["id"]),
        "session-bob": gid("Session", sessions["bob"]["id"]),
        "session-gone": gid("Session", sessions["gone"]["id"]),
        "session-deleted": gid("Session", sessions["deleted"]["id"]),
        "asset-alice": gid("Asset", assets["alice-full-clip"]["id"]),
        "asset-bob": gid("Asset", assets["bob-image"]["id"]),
        "asset-deleted-session": gid("Asset", assets["deleted-image"]["id"]),
        "asset-dropped": gid("Asset", assets["alice-full-dropped"]["id"]),
        "user-alice": gid("User", users["alice"]["id"]),
        "user-bob": gid("User", users["bob"]["id"]),
        "user-gone": gid("User", users["gone"]["id"]),
        "webhook": gid("WebhookEndpoint", uuid.uuid4()),
    }
    many = [ids["job"]] * 101
    return {
        **variables,
        "after": after,
        "id": ids[variables["id"]],
        "ids": many if variables["ids"] == ["too-many"] else [ids[i] for i in variables["ids"]],
        "sid": ids[variables["sid"]],
    }


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(doc=documents())
def test_compiled_answers_byte_for_byte_as_interpreted(
    doc: tuple[str, dict[str, Any]], clients: dict[str, Any], world: dict[str, Any]
) -> None:
    query, variables = doc
    payload = {"query": query, "variables": _resolve(world, variables)}
    for viewer, (compiled, interpreted) in clients.items():
        a = compiled.post("/graphql", json=payload)
        b = interpreted.post("/graphql", json=payload)
        assert (a.status_code, _racy(a.content)) == (b.status_code, _racy(b.content)), (
            viewer, query, payload,
        )  # fmt: skip


def _racy(body: bytes) -> Any:
    """The body's bytes; for a whole-data failure (`data` null: a non-null root field
    failed, which only the interpreter answers) the errors other than the masked
    internal ones. graphql-core stops at the first non-null root error, so whether a
    sibling root's later error (an output's 64-bit width) is listed depends on which
    statement returned first: the interpreter disagrees with itself there."""
    if not body.startswith(b'{"data":null,"errors"'):
        return body
    errors = orjson.loads(body)["errors"]
    return [e for e in errors if e.get("extensions", {}).get("code") != "INTERNAL_SERVER_ERROR"]


def test_the_differential_test_exercised_plans(
    clients: dict[str, Any], servers: dict[str, Any], world: dict[str, Any]
) -> None:
    """Most generated documents ran compiled (not all fell back), and the interpreted
    server never compiled anything."""
    stats = servers["compiled"][1].compiler.stats
    print(stats)
    assert stats.compiled > 50, stats
    assert stats.compiled > stats.fallbacks, stats
    off = servers["interpreted"][1]
    assert off.compiler.stats.compiled == 0


def test_known_documents_compile_and_errors_answer_alike(
    clients: dict[str, Any], world: dict[str, Any]
) -> None:
    """Fixed cases: the bench's page, a bad cursor, first out of range, a job's id of
    the wrong type, an unknown field (interpreted), a deep page through cursors."""
    compiled, interpreted = clients["alice"]
    feed = """query($after: String) { jobs(first: 3, after: $after) {
      edges { cursor node { ... on GenerationJob { id status owner { email } } } }
      pageInfo { hasNextPage endCursor } totalCount } }"""
    after = None
    pages = 0
    while True:
        a = compiled.post("/graphql", json={"query": feed, "variables": {"after": after}})
        b = interpreted.post("/graphql", json={"query": feed, "variables": {"after": after}})
        assert a.content == b.content
        page = a.json()["data"]["jobs"]
        pages += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert pages > 3
    for query, code in (
        ('{ jobs(after: "bogus-cursor-xx") { totalCount } }', "BAD_CURSOR"),
        ("{ imageJobs(first: 500) { totalCount } }", "INVALID_ARGUMENT"),
        ('{ job(id: "%%") { __typename } }', "INVALID_ID"),
        ("{ jobs { edges { node { ... on GenerationJob { session { id } } } } } }", None),
    ):
        a = compiled.post("/graphql", json={"query": query})
        b = interpreted.post("/graphql", json={"query": query})
        assert a.content == b.content, query
        if code:
            assert a.json()["errors"][0]["extensions"]["code"] == code


def test_compiled_owner_emails_follow_the_users_rule(
    clients: dict[str, Any], world: dict[str, Any]
) -> None:
    """Other people's emails are hidden on the compiled path as on the interpreted one
    (a public feed names owners; only the owner and admins see an address)."""
    query = """{ jobs(first: 50, filter: {scope: PUBLIC}) { edges { node {
        ... on GenerationJob { owner { id email } } } } } }"""
    bob = world["users"]["bob"]
    for viewer in ("anonymous", "bob", "admin"):
        compiled, interpreted = clients[viewer]
        a = compiled.post("/graphql", json={"query": query})
        assert a.content == interpreted.post("/graphql", json={"query": query}).content
        owners = [e["node"]["owner"] for e in a.json()["data"]["jobs"]["edges"]]
        emails = {o["email"] for o in owners if o}
        if viewer == "admin":
            assert "" not in emails and len(emails) > 1
        elif viewer == "bob":
            assert emails <= {"", bob["email"]} and "" in emails
        else:
            assert emails == {""}


def test_compiled_file_urls_are_signed_as_interpreted(
    clients: dict[str, Any], world: dict[str, Any]
) -> None:
    """Stored files' URLs come out signed for the viewer on both paths (a plan that
    handed out the canonical URL would give every /files request a 404)."""
    query = """{ jobs(first: 50, filter: {scope: MINE}) { edges { node {
        ... on GenerationJob { parameters outputs { url } } } } } }"""
    compiled, interpreted = clients["alice"]
    a = compiled.post("/graphql", json={"query": query})
    assert a.content == interpreted.post("/graphql", json={"query": query}).content
    urls = [o["url"] for e in a.json()["data"]["jobs"]["edges"] for o in e["node"]["outputs"]]
    ours = [u for u in urls if u.startswith(OURS)]
    assert ours and all("sig=" in u and "exp=" in u for u in ours), ours


SESSION_DOC = """query($sid: ID!) { session(id: $sid) { id status sessionStatus tries: retryCount
  musicUrl metadata consistencySeed owner { email storageUsedBytes webhookSecret }
  assets { id type url seed fileSizeBytes sourceImage { id } job { __typename } session { id } }
  images: assets(type: IMAGE, status: APPROVED) { id }
  moodBoard { id selectionOrder } finalVideo { id url }
  costBreakdown { category provider apiCalls totalCost avgLatencyMs __typename }
  jobs(first: 3) { totalCount pageInfo { hasNextPage endCursor }
                   edges { cursor node { ... on GenerationJob { id owner { id } } } } } } }"""
NODES_DOC = """query($ids: [ID!]!) { nodes(ids: $ids) { id __typename
  ... on User { email displayName webhookSecret storageQuotaBytes }
  ... on Asset { url assetStatus session { id } }
  ... on Session { sessionStatus finalVideo { id } }
  ... on GenerationJob { status owner { email } } } }"""
ME_DOC = """{ me { id email fullName role createdAt displayName storageUsedBytes
  storageQuotaBytes webhookSecret __typename } }"""


def _both(clients: dict[str, Any], servers: dict[str, Any], viewer: str, query: str,
          variables: dict[str, Any]) -> Any:  # fmt: skip
    """The compiled server's answer, checked to be a plan's (not the interpreter's) and
    to be the interpreted server's bytes."""
    stats = servers["compiled"][1].compiler.stats
    compiled, interpreted = clients[viewer]
    before = stats.compiled
    payload = {"query": query, "variables": variables}
    a = compiled.post("/graphql", json=payload)
    assert stats.compiled == before + 1, (viewer, query, stats)
    assert a.content == interpreted.post("/graphql", json=payload).content, (viewer, query)
    return a.json()


def test_sessions_nodes_and_me_are_answered_by_plans(
    clients: dict[str, Any], servers: dict[str, Any], world: dict[str, Any]
) -> None:
    """session(id:), nodes(ids:) of every type and me run as plans (before this they
    ran interpreted), for every viewer, with the interpreted answer's bytes; and what
    they show follows the visibility rules: a session is its owner's and the admins',
    an asset is seen through its session, a user by itself and the admins."""
    sessions, assets, users = world["sessions"], world["assets"], world["users"]
    alice_session = gid("Session", sessions["alice-full"]["id"])
    ids = [gid("Session", sessions["bob"]["id"]), gid("Asset", assets["alice-full-clip"]["id"]),
           gid("Asset", assets["deleted-image"]["id"]), gid("User", users["alice"]["id"]),
           gid("User", users["bob"]["id"]), gid("ImageJob", uuid.uuid4()),
           gid(TYPE_NAMES[world["jobs"][0][0]], world["jobs"][0][1]["id"])]  # fmt: skip
    answers: dict[str, Any] = {}
    for viewer in clients:
        answers[viewer] = (
            _both(clients, servers, viewer, SESSION_DOC, {"sid": alice_session})["data"],
            _both(clients, servers, viewer, NODES_DOC, {"ids": ids})["data"]["nodes"],
            _both(clients, servers, viewer, ME_DOC, {})["data"]["me"],
        )
    session, nodes, me = answers["alice"]
    session = session["session"]
    assert [a["id"] for a in session["moodBoard"]] == [
        gid("Asset", assets[f"alice-full-{n}"]["id"]) for n in ("first", "image", "side")
    ]
    urls = [a["url"] for a in session["assets"] if a["url"]]
    assert any(u.startswith(OURS) and "sig=" in u for u in urls), urls
    assert session["owner"]["webhookSecret"] == "whsec_alice"
    assert session["jobs"]["totalCount"] > 0 and session["images"]
    assert [c["apiCalls"] for c in session["costBreakdown"]] == [2, 1]
    assert next(a["seed"] for a in session["assets"] if a["type"] == "IMAGE") is None  # 2**40
    assert me["webhookSecret"] == "whsec_alice" and me["storageQuotaBytes"] == 10.0**9
    assert nodes[0] is None and nodes[1]["session"]["id"] == alice_session
    assert nodes[2] is None and nodes[3]["email"] and nodes[4] is None and nodes[5] is None
    assert answers["bob"][0]["session"] is None and answers["anonymous"][2] is None
    bob_session = answers["bob"][1][0]
    assert bob_session["finalVideo"] is None  # alice's asset: not bob's to see
    assert answers["admin"][1][0]["finalVideo"]["id"] == gid(
        "Asset", assets["alice-full-final"]["id"]
    )
    assert answers["bob"][2]["storageQuotaBytes"] == 5000.0
    assert answers["admin"][1][4]["email"] and answers["admin"][0]["session"]["owner"]["email"]
    assert answers["admin"][0]["session"]["owner"]["webhookSecret"] is None


def test_unusual_nodes_requests_answer_as_interpreted(
    clients: dict[str, Any], world: dict[str, Any]
) -> None:
    """Errors of nodes(ids:) come from the interpreter: too many ids, a malformed id,
    an id of a type node() does not fetch; an empty list is an empty list."""
    compiled, interpreted = clients["alice"]
    job = gid(TYPE_NAMES[world["jobs"][0][0]], world["jobs"][0][1]["id"])
    for ids, code in (
        ([job] * 101, "INVALID_ARGUMENT"),
        ([job, "%%%"], "INVALID_ID"),
        ([gid("WebhookEndpoint", uuid.uuid4())], "INVALID_ID"),
        ([], None),
    ):
        payload = {"query": NODES_DOC, "variables": {"ids": ids}}
        a = compiled.post("/graphql", json=payload)
        assert a.content == interpreted.post("/graphql", json=payload).content, ids
        if code:
            assert a.json()["errors"][0]["extensions"]["code"] == code
        else:
            assert a.json() == {"data": {"nodes": []}}


def test_a_failed_field_does_not_cancel_what_its_siblings_share(
    clients: dict[str, Any], world: dict[str, Any]
) -> None:
    """Found by the differential test, on the interpreter: session.jobs(first: 0) fails
    while session.owner waits for the user that job.owner waits for too; graphql-core
    cancels the failed field's siblings, which cancelled the loader's shared future, so
    job.owner raised CancelledError and the request answered 500 (one in four times).
    Repeated: the race goes either way on one request."""
    alice = world["users"]["alice"]["id"]
    kind, job = next(
        (k, r) for k, r in world["jobs"] if r["user_id"] == alice and r["deleted_at"] is None
    )
    query = """query($id: ID!, $sid: ID!) { job(id: $id) { ... on GenerationJob { owner { id } } }
      session(id: $sid) { owner { id } jobs(first: 0) { totalCount } } }"""
    variables = {"id": gid(TYPE_NAMES[kind], job["id"]),
                 "sid": gid("Session", world["sessions"]["alice-full"]["id"])}  # fmt: skip
    compiled, interpreted = clients["alice"]
    for _ in range(20):
        a = compiled.post("/graphql", json={"query": query, "variables": variables})
        b = interpreted.post("/graphql", json={"query": query, "variables": variables})
        assert (a.status_code, a.content) == (b.status_code, b.content)
        body = b.json()
        assert b.status_code == 200 and body["data"]["session"] is None
        assert body["data"]["job"]["owner"]["id"] == gid("User", alice)
        assert body["errors"][0]["extensions"]["code"] == "INVALID_ARGUMENT"


def test_an_output_size_int_cannot_carry_is_null_not_an_internal_error(
    clients: dict[str, Any], world: dict[str, Any]
) -> None:
    """A stored output with width 2**40 (written by something else) reads as width null,
    on both paths, instead of failing the whole feed with INTERNAL_SERVER_ERROR."""
    query = (
        "{ jobs(first: 100) { edges { node { ... on GenerationJob { outputs { url width } } } } } }"
    )
    compiled, interpreted = clients["admin"]
    a = compiled.post("/graphql", json={"query": query})
    assert a.content == interpreted.post("/graphql", json={"query": query}).content
    body = a.json()
    assert "errors" not in body, body["errors"][:1]
    from comfygraph.schema.jobs import job_output

    big = job_output({"kind": "image", "url": "http://f/big.png", "width": 2**40, "height": 9})
    assert big is not None and big.width is None and big.height == 9
