"""A small world of users, sessions, assets and jobs over the four tables, inserted
through the repositories, plus the visibility rules restated independently so the
tests can compute what each viewer must (and must not) see."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from comfygraph.db.assets import create_asset
from comfygraph.db.costs import record_cost
from comfygraph.db.jobs import create_job, soft_delete
from comfygraph.db.kinds import OutputType
from comfygraph.db.sessions import create_session
from tests.db.factories import make_user

BASE = datetime(2026, 1, 1, tzinfo=UTC)
WORKFLOWS = {
    OutputType.VIDEO: ["lipsync-one", "wan-i2v"],
    OutputType.IMAGE: ["img2img", "style-transfer"],
    OutputType.TEXT: ["character-caption"],
    OutputType.AUDIO: ["tts"],
}
TYPE_NAMES = {
    OutputType.VIDEO: "VideoJob",
    OutputType.IMAGE: "ImageJob",
    OutputType.TEXT: "TextJob",
    OutputType.AUDIO: "AudioJob",
}
STATUSES = ["pending", "processing", "completed", "failed", "cancelled"]


@dataclass
class World:
    users: dict[str, asyncpg.Record] = field(default_factory=dict)
    jobs: list[tuple[OutputType, asyncpg.Record]] = field(default_factory=list)
    sessions: dict[str, asyncpg.Record] = field(default_factory=dict)
    assets: dict[str, asyncpg.Record] = field(default_factory=dict)

    def uid(self, name: str) -> uuid.UUID:
        return self.users[name]["id"]  # type: ignore[no-any-return]

    def live_jobs(self) -> list[tuple[OutputType, asyncpg.Record]]:
        return [(k, r) for k, r in self.jobs if r["deleted_at"] is None]

    def private_job_of(self, name: str) -> tuple[OutputType, asyncpg.Record]:
        return next(
            (k, r)
            for k, r in self.live_jobs()
            if r["user_id"] == self.uid(name) and not r["public"]
        )


def may_see(viewer: uuid.UUID | None, admin: bool, row: Any) -> bool:
    return row["deleted_at"] is None and (admin or row["public"] or row["user_id"] == viewer)


def in_scope(scope: str, viewer: uuid.UUID | None, admin: bool, row: Any) -> bool:
    if scope == "MINE":
        return viewer is not None and row["user_id"] == viewer
    if scope == "PUBLIC" or viewer is None:
        return bool(row["public"])
    return admin or row["public"] or row["user_id"] == viewer


def newest_first(rows: list[tuple[OutputType, Any]]) -> list[uuid.UUID]:
    ordered = sorted(rows, key=lambda kr: (kr[1]["created_at"], kr[1]["id"]), reverse=True)
    return [r["id"] for _k, r in ordered]


async def build_world(conn: asyncpg.Connection, *, jobs: int = 90, seed: int = 11) -> World:
    rng = random.Random(seed)
    world = World()
    for name, role in (("alice", "user"), ("bob", "user"), ("admin", "admin")):
        world.users[name] = await make_user(conn, role=role)
    alice, bob = world.uid("alice"), world.uid("bob")

    s1 = await create_session(conn, user_id=alice, user_product_prompt="pink shoes",
                              product_category="footwear", style_keywords=["pastel"])  # fmt: skip
    s2 = await create_session(conn, user_id=alice, user_product_prompt="blue bag")
    s3 = await create_session(conn, user_id=bob, user_product_prompt="red watch")
    world.sessions.update(alice_1=s1, alice_2=s2, bob_1=s3)

    for i in range(jobs):
        kind = rng.choice(list(OutputType))
        owner = rng.choice([alice, bob])
        session = rng.choice([None, None, s1 if owner == alice else s3])
        # Few distinct seconds, some a microsecond apart: ties broken by id, and
        # cursors must keep full microsecond precision.
        created = BASE + timedelta(seconds=rng.randrange(8), microseconds=rng.choice([0, 1, 2]))
        row, _ = await create_job(
            conn, kind, user_id=owner, workflow_name=rng.choice(WORKFLOWS[kind]),
            parameters={"i": i}, public=rng.random() < 0.4, created_at=created,
            status=rng.choice(STATUSES), session_id=session and session["id"],
            comfy_job_id=f"prompt-{i}",
            outputs=[{"kind": "image", "url": f"http://files/{i}.png", "filename": f"{i}.png",
                      "mimeType": "image/png", "node": "9", "width": 64, "height": 64}],
        )  # fmt: skip
        if rng.random() < 0.08:
            row = await soft_delete(conn, kind, row["id"])
        world.jobs.append((kind, row))

    bob_kind, bob_job = world.private_job_of("bob")
    alice_kind, alice_job = world.private_job_of("alice")
    img1 = await create_asset(conn, session_id=s1["id"], type="image", status="approved",
                              url="http://files/a1.png", user_selected=True, selection_order=2,
                              job_id=alice_job["id"], job_output_type=alice_kind.value)  # fmt: skip
    img2 = await create_asset(conn, session_id=s1["id"], type="image", status="approved",
                              url="http://files/a2.png", user_selected=True, selection_order=1,
                              seed=2**40)  # fmt: skip
    clip = await create_asset(conn, session_id=s1["id"], type="video_clip", status="completed",
                              source_image_id=img1["id"], url="http://files/c1.mp4")  # fmt: skip
    final = await create_asset(conn, session_id=s1["id"], type="final_video", status="completed",
                               url="http://files/final.mp4")  # fmt: skip
    # Bob's asset points at a private job of bob's: Alice must never reach it.
    bob_img = await create_asset(conn, session_id=s3["id"], type="image", status="completed",
                                 job_id=bob_job["id"], job_output_type=bob_kind.value)  # fmt: skip
    world.assets.update(img1=img1, img2=img2, clip=clip, final=final, bob_img=bob_img)
    await record_cost(conn, category="image_generation", amount=0.05, session_id=s1["id"],
                      provider="comfyui", api_latency_ms=120)  # fmt: skip
    await record_cost(conn, category="llm", amount=0.01, session_id=s1["id"], provider="openai")
    return world
