"""Retention and quotas (issue 15): the sweeper deletes an expired job's stored files
and marks it EXPIRED (row and costs kept; pinned jobs and jobs of a running session
kept; one replica per job), clients see Job.expiresAt, pinJob keeps a job; per-user
storage quotas refuse uploads and submissions with QUOTA_EXCEEDED before anything is
stored or queued. Real PostgreSQL, real HTTP, the app's own file storage."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest

from comfygraph.bus import EventBus
from comfygraph.comfy.templates import TemplateError, parse_template
from comfygraph.db.jobs import create_job
from comfygraph.db.kinds import OutputType
from comfygraph.db.sessions import create_session
from comfygraph.storage import Storage, open_storage
from comfygraph.studio.channels import JobEvents
from comfygraph.studio.publish import bus_publisher
from comfygraph.studio.retention import Retention, sweep_once
from tests.graphql.client import codes, gid
from tests.mutations import media
from tests.mutations.conftest import App, job_count, next_event, tree

DAYS = 7


@pytest.fixture(scope="module")
def app_options() -> dict[str, Any]:
    # The app's own sweeper waits an hour: the tests sweep when they choose.
    return {"retention_days": DAYS, "retention_sweep_interval": 3600.0}


@pytest.fixture
def storage(app: App) -> Storage:
    return open_storage(app.settings.effective_storage_url(), app.url)


async def finished_job(
    pool: asyncpg.Pool,
    storage: Storage,
    owner: uuid.UUID,
    *,
    days_ago: float,
    **columns: Any,
) -> tuple[uuid.UUID, str]:
    """A COMPLETED image job that ended `days_ago`, with one stored output; (id, key)."""
    async with pool.acquire() as conn:
        row, _ = await create_job(
            conn, OutputType.IMAGE, user_id=owner, workflow_name="product-image", parameters={},
            **columns,
        )  # fmt: skip
        key = f"workflows/product-image/{row['id']}/out.png"
        stored = await storage.put(key, media.png(), content_type="image/png")
        await storage.put(f"previews/{row['id']}.jpg", b"\xff\xd8 a preview")
        output = {"kind": "IMAGE", "url": stored.url, "filename": "out.png",
                  "mimeType": "image/png", "sizeBytes": stored.size}  # fmt: skip
        await conn.execute(
            """UPDATE image_jobs SET status = 'completed', progress = 100, cost_usd = 0.25,
                   completed_at = now() - make_interval(secs => $2), outputs = $3::jsonb,
                   output_image_urls = ARRAY[$4]
               WHERE id = $1""",
            row["id"],
            days_ago * 86400,
            [output],
            stored.url,
        )
    return row["id"], key


JOB = """query($id: ID!) { job(id: $id) { ... on GenerationJob { id status completedAt
  expiresAt expiredAt pinned costUsd outputs { url } } ... on ImageJob { outputImageUrls } } }"""
FEED = """{ jobs(first: 50) { edges { node { ... on GenerationJob {
  id status completedAt expiresAt } } } } }"""


async def test_sweeper_expires_only_what_is_due_once_across_replicas(
    app: App, pool: asyncpg.Pool, storage: Storage, bus: EventBus
) -> None:
    alice = app.uid("alice")
    async with pool.acquire() as conn:
        running = await create_session(conn, user_id=alice, user_product_prompt="a running one")
    due = [await finished_job(pool, storage, alice, days_ago=DAYS + 1) for _ in range(3)]
    kept = {
        "recent": await finished_job(pool, storage, alice, days_ago=DAYS - 1),
        "pinned": await finished_job(pool, storage, alice, days_ago=DAYS + 1, pinned=True),
        "session": await finished_job(
            pool, storage, alice, days_ago=DAYS + 1, session_id=running["id"]
        ),
        # the template's own retention (kept on the job) wins over RETENTION_DAYS
        "template": await finished_job(pool, storage, alice, days_ago=DAYS + 1, retention_days=30),
    }
    publish = bus_publisher(bus)
    sweeper = Retention(pool, storage, DAYS, events=JobEvents(publish))
    async with bus.subscribe(f"feed:user:{alice}") as sub:
        # Two replicas sweeping at once: each job is expired by exactly one of them.
        counts = await asyncio.gather(sweep_once(sweeper), sweep_once(sweeper))
        assert sum(counts) == len(due)
        # Live feeds hear of it.
        event = await next_event(sub, lambda e: e.get("status") == "expired")
        assert uuid.UUID(event["id"]) in {job_id for job_id, _ in due}
    await publish.aclose()
    for job_id, key in due:
        assert await storage.head(key) is None, "the expired job's file is deleted"
        assert await storage.head(f"previews/{job_id}.jpg") is None, "and its live preview"
        job = (await app.clients["alice"].data(JOB, {"id": gid("ImageJob", job_id)}))["job"]
        assert job["status"] == "EXPIRED" and job["expiredAt"] is not None
        assert job["expiresAt"] is None
        assert job["costUsd"] == 0.25, "the row and its costs stay"
        assert job["outputs"] == [] and job["outputImageUrls"] == []
    for name, (job_id, key) in kept.items():
        assert await storage.head(key) is not None, name
        job = (await app.clients["alice"].data(JOB, {"id": gid("ImageJob", job_id)}))["job"]
        assert job["status"] == "COMPLETED", name
    assert await sweep_once(sweeper) == 0, "nothing is swept twice"
    # The session ends: its job goes with the next sweep.
    async with pool.acquire() as conn:
        await conn.execute("UPDATE sessions SET status = 'completed' WHERE id = $1", running["id"])
    assert await sweep_once(sweeper) == 1
    assert await storage.head(kept["session"][1]) is None


async def test_expires_at_pin_and_unpin(app: App, pool: asyncpg.Pool, storage: Storage) -> None:
    job_id, _ = await finished_job(pool, storage, app.uid("alice"), days_ago=1)
    job_gid = gid("ImageJob", job_id)
    job = (await app.clients["alice"].data(JOB, {"id": job_gid}))["job"]
    ended = datetime.fromisoformat(job["completedAt"])
    assert datetime.fromisoformat(job["expiresAt"]) == ended + timedelta(days=DAYS)
    # The feed (a document the compiled plan may answer) says the same.
    edges = (await app.clients["alice"].data(FEED))["jobs"]["edges"]
    node = next(e["node"] for e in edges if e["node"]["id"] == job_gid)
    assert node["expiresAt"] == job["expiresAt"]

    pin = """mutation($id: ID!) { pinJob(id: $id) { job { pinned expiresAt }
      userErrors { code field } } }"""
    unpin = """mutation($id: ID!) { unpinJob(id: $id) { job { pinned expiresAt }
      userErrors { code field } } }"""
    assert (await app.clients["alice"].data(pin, {"id": job_gid}))["pinJob"] == {
        "job": {"pinned": True, "expiresAt": None},
        "userErrors": [],
    }
    edges = (await app.clients["alice"].data(FEED))["jobs"]["edges"]
    assert next(e["node"] for e in edges if e["node"]["id"] == job_gid)["expiresAt"] is None
    # Someone else's (private) job is not theirs to unpin: as an unknown id.
    other = (await app.clients["bob"].data(unpin, {"id": job_gid}))["unpinJob"]
    assert other == {"job": None, "userErrors": [{"code": "NOT_FOUND", "field": ["id"]}]}
    done = (await app.clients["alice"].data(unpin, {"id": job_gid}))["unpinJob"]
    assert done["job"] == {"pinned": False, "expiresAt": job["expiresAt"]}
    bad = (await app.clients["alice"].data(pin, {"id": "nonsense"}))["pinJob"]
    assert [e["code"] for e in bad["userErrors"]] == ["INVALID_ID"]


UPLOAD = """mutation($file: Upload!) { uploadFile(file: $file) {
  url sizeBytes userErrors { field code message } } }"""
QUOTA = """mutation($user: ID!, $bytes: Float) { setStorageQuota(userId: $user, bytes: $bytes) {
  user { storageQuotaBytes } userErrors { code field } } }"""
ME = "{ me { storageUsedBytes storageQuotaBytes } }"
SUBMIT = """mutation($input: SubmitJobInput!) { submitJob(input: $input) {
  job { id } userErrors { code field message } } }"""


async def test_quota_refuses_uploads_and_submissions(app: App, pool: asyncpg.Pool) -> None:
    bob = app.clients["bob"]
    bob_gid = gid("User", app.uid("bob"))
    assert (await bob.data(ME))["me"] == {"storageUsedBytes": 0, "storageQuotaBytes": None}
    # Only admins set quotas, with a whole number of bytes.
    assert codes(await bob.post(QUOTA, {"user": bob_gid, "bytes": 1})) == ["FORBIDDEN"]
    admin = app.clients["admin"]
    for wrong in (-1, 1.5):
        refused = (await admin.data(QUOTA, {"user": bob_gid, "bytes": wrong}))["setStorageQuota"]
        assert refused["userErrors"] == [{"code": "INVALID_QUOTA", "field": ["bytes"]}]
    small = media.png()
    quota = len(small) + 100
    done = (await admin.data(QUOTA, {"user": bob_gid, "bytes": quota}))["setStorageQuota"]
    assert done == {"user": {"storageQuotaBytes": quota}, "userErrors": []}

    stored = (await bob.upload(UPLOAD, "a.png", small, "image/png"))["data"]["uploadFile"]
    assert stored["userErrors"] == []
    assert (await bob.data(ME))["me"] == {"storageUsedBytes": len(small),
                                          "storageQuotaBytes": quota}  # fmt: skip
    # Another file would go past the quota: refused, nothing stored.
    before = tree(app.files)
    big = (await bob.upload(UPLOAD, "b.png", small, "image/png"))["data"]["uploadFile"]
    assert big["url"] is None
    assert [(e["code"], e["field"]) for e in big["userErrors"]] == [("QUOTA_EXCEEDED", ["file"])]
    assert tree(app.files) == before
    # Used up: a submission is refused before anything is queued.
    await admin.data(QUOTA, {"user": bob_gid, "bytes": len(small)})
    jobs = await job_count(pool)
    submit = {"workflowName": "product-image", "parameters": {"prompt": "a boat"}}
    refused = (await bob.data(SUBMIT, {"input": submit}))["submitJob"]
    assert refused["job"] is None
    assert [e["code"] for e in refused["userErrors"]] == ["QUOTA_EXCEEDED"]
    assert await job_count(pool) == jobs
    refused = (await bob.upload(UPLOAD, "c.png", small, "image/png"))["data"]["uploadFile"]
    assert [e["code"] for e in refused["userErrors"]] == ["QUOTA_EXCEEDED"]
    session = """mutation { createSession(input: {userProductPrompt: "a red bag"}) {
      session { id } userErrors { code field } } }"""
    refused = (await bob.data(session))["createSession"]
    assert refused == {
        "session": None,
        "userErrors": [{"code": "QUOTA_EXCEEDED", "field": ["input"]}],
    }
    async with pool.acquire() as conn:
        assert (
            await conn.fetchval("SELECT count(*) FROM sessions WHERE user_id = $1", app.uid("bob"))
            == 0
        )
    # An admin sees bob's figures.
    other = f'{{ node(id: "{bob_gid}") {{ ... on User {{ storageUsedBytes }} }} }}'
    assert (await admin.data(other))["node"] == {"storageUsedBytes": len(small)}
    back = (await admin.data(QUOTA, {"user": bob_gid, "bytes": None}))["setStorageQuota"]
    assert back == {"user": {"storageQuotaBytes": None}, "userErrors": []}
    accepted = (await bob.data(SUBMIT, {"input": submit}))["submitJob"]
    assert accepted["userErrors"] == [] and accepted["job"]


def test_a_template_sets_its_own_retention() -> None:
    base = {"name": "keep", "outputType": "IMAGE", "graph": {"1": {"class_type": "SaveImage",
            "inputs": {}}}, "outputs": ["1"]}  # fmt: skip
    assert parse_template({**base, "retentionDays": 30}, source="t").retention_days == 30
    assert parse_template(base, source="t").retention_days is None
    for wrong in (0, -1, 1.5, True, "30"):
        with pytest.raises(TemplateError, match="retentionDays"):
            parse_template({**base, "retentionDays": wrong}, source="t")


async def test_the_app_runs_the_sweeper_under_its_supervisor(app: App) -> None:
    text = (await app.clients["anonymous"].http.get("/metrics")).text
    assert 'comfygraph_loop_restarts_total{loop="retention"} 0.0' in text
