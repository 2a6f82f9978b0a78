"""submitJob and retryJob against the running app: jobs run on a real emulator worker,
bad input comes back as userErrors with the field that caused them, nothing is stored
then, and the server keeps serving."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from comfygraph.bus import EventBus, Subscription
from comfygraph.comfy.templates import load_templates, validate
from comfygraph.db.jobs import create_job, get_job
from comfygraph.db.kinds import OutputType
from comfygraph.db.sessions import create_session
from tests.graphql.client import codes, gid, row_id
from tests.mutations import media
from tests.mutations.conftest import TERMINAL, App, job_count, next_event, quiet

IMAGE = OutputType.IMAGE
JOB_FIELDS = """__typename ... on GenerationJob { id status workflowName parameters public
  progress outputs { kind url mimeType } session { id } owner { id } }
  ... on ImageJob { prompt inputImageUrls outputImageUrls width height }"""
SUBMIT = f"""mutation($input: SubmitJobInput!) {{ submitJob(input: $input) {{
  job {{ {JOB_FIELDS} }} userErrors {{ field message code }} }} }}"""
RETRY = f"""mutation($id: ID!) {{ retryJob(id: $id) {{
  job {{ {JOB_FIELDS} }} userErrors {{ field message code }} }} }}"""
CANCEL = """mutation($id: ID!) { cancelJob(id: $id) {
  job { ... on GenerationJob { id status } } userErrors { field code message } } }"""
JOB = f"query($id: ID!) {{ job(id: $id) {{ {JOB_FIELDS} }} }}"
UPLOAD = """mutation($file: Upload!) { uploadFile(file: $file) {
  url name contentType sizeBytes userErrors { field code message } } }"""


def product(prompt: str = "a pink tennis shoe", **more: Any) -> dict[str, Any]:
    """A product-image request (small, so the emulator is quick about it)."""
    parameters = {"prompt": prompt, "width": 256, "height": 256, **more}
    return {"workflowName": "product-image", "parameters": parameters}


def img2img(image: str) -> dict[str, Any]:
    return {"workflowName": "img2img", "parameters": {"image": image, "prompt": "a cat"}}


def fill(value: Any, subs: dict[str, str]) -> Any:
    """`value` with every "{name}" in its strings replaced from `subs`."""
    if isinstance(value, dict):
        return {k: fill(v, subs) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, subs) for v in value]
    if isinstance(value, str):
        for name, replacement in subs.items():
            value = value.replace(f"{{{name}}}", replacement)
    return value


def feed(app: App, name: str) -> str:
    return f"feed:user:{app.uid(name)}"


async def finished(sub: Subscription, job_gid: str) -> dict[str, Any]:
    """The job's terminal status event, from the app's broadcast."""
    job_uuid = str(row_id(job_gid))
    return await next_event(
        sub, lambda e: e["id"] == job_uuid and e["type"] == "status" and e["status"] in TERMINAL
    )


@pytest.fixture(scope="module")
async def sessions(pool: asyncpg.Pool, app: App) -> dict[str, str]:
    async with pool.acquire() as conn:
        mine = await create_session(conn, user_id=app.uid("alice"), user_product_prompt="shoes")
        bobs = await create_session(conn, user_id=app.uid("bob"), user_product_prompt="watch")
    return {"alice": gid("Session", mine["id"]), "bob": gid("Session", bobs["id"])}


async def make_job(pool: asyncpg.Pool, app: App, owner: str, status: str, **columns: Any) -> str:
    """A valid product-image job of `owner` in `status`, inserted directly."""
    template = load_templates().get("product-image")
    assert template is not None
    clean, errors = validate(template, {"prompt": f"{status} job"})
    assert not errors
    if status == "processing":  # held by another replica: nobody here touches it
        columns |= {"claimed_by": "elsewhere", "started_at": datetime.now(UTC),
                    "lease_expires_at": datetime.now(UTC) + timedelta(hours=1)}  # fmt: skip
    async with pool.acquire() as conn:
        row, _ = await create_job(
            conn, IMAGE, user_id=app.uid(owner), workflow_name="product-image",
            parameters=clean, status=status, **columns,
        )  # fmt: skip
    return gid("ImageJob", row["id"])


async def test_submit_runs_on_the_worker(app: App, bus: EventBus, pool: asyncpg.Pool) -> None:
    alice = app.clients["alice"]
    async with bus.subscribe(feed(app, "alice")) as sub:
        body = await alice.data(SUBMIT, {"input": {**product(steps=12), "priority": 7}})
        job = body["submitJob"]["job"]
        assert body["submitJob"]["userErrors"] == []
        assert job["__typename"] == "ImageJob" and job["status"] == "PENDING"
        parameters = job["parameters"]
        assert parameters["prompt"] == "a pink tennis shoe" and parameters["steps"] == 12
        assert isinstance(parameters["seed"], int) and 0 <= parameters["seed"] < 2**31
        assert parameters["view_type"] == "front", "defaults are filled in and recorded"
        assert job["prompt"] == "a pink tennis shoe" and job["owner"]["id"] == gid(
            "User", app.uid("alice")
        )
        assert (await finished(sub, job["id"]))["status"] == "completed"
    done = (await alice.data(JOB, {"id": job["id"]}))["job"]
    assert done["status"] == "COMPLETED" and done["progress"] == 100
    assert done["parameters"] == parameters, "what ran is what was recorded"
    assert done["outputImageUrls"] and done["width"] and done["height"]
    image = await alice.http.get(done["outputImageUrls"][0])
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    async with pool.acquire() as conn:
        row = await get_job(conn, IMAGE, row_id(job["id"]))
    assert row is not None and row["priority"] == 7 and row["user_ip"] == "127.0.0.1"


async def test_upload_then_submit_with_the_url(app: App, bus: EventBus) -> None:
    alice = app.clients["alice"]
    body = await alice.upload(UPLOAD, "cat.png", media.png((96, 64)), "image/png")
    stored = body["data"]["uploadFile"]
    assert stored["userErrors"] == [] and stored["contentType"] == "image/png"
    async with bus.subscribe(feed(app, "alice")) as sub:
        body = await alice.data(SUBMIT, {"input": {"workflowName": "img2img", "parameters": {
            "image": stored["url"], "prompt": "a watercolor cat"}}})  # fmt: skip
        job = body["submitJob"]["job"]
        assert body["submitJob"]["userErrors"] == []
        # The same file, signed for the job instead of the upload.
        assert [u.split("?")[0] for u in job["inputImageUrls"]] == [stored["url"].split("?")[0]]
        assert (await finished(sub, job["id"]))["status"] == "completed"
    done = (await alice.data(JOB, {"id": job["id"]}))["job"]
    assert done["status"] == "COMPLETED" and done["outputImageUrls"]
    assert {o["kind"] for o in done["outputs"]} == {"IMAGE"}


async def test_submit_in_a_session_and_public(app: App, sessions: dict[str, str]) -> None:
    body = await app.clients["alice"].data(
        SUBMIT, {"input": {**product(), "sessionId": sessions["alice"], "public": True}}
    )
    job = body["submitJob"]["job"]
    assert job["session"] == {"id": sessions["alice"]} and job["public"] is True
    # Public: Bob sees it.
    assert (await app.clients["bob"].data(JOB, {"id": job["id"]}))["job"]["id"] == job["id"]


def _errors(*items: tuple[str, list[str] | None]) -> list[tuple[str, list[str] | None]]:
    return sorted(items, key=lambda item: (item[0], item[1] or []))


BAD_INPUTS: dict[str, tuple[dict[str, Any], list[tuple[str, list[str] | None]]]] = {
    "wrong type": (product(steps="many"), [("INVALID_PARAMETER", ["parameters", "steps"])]),
    "out of range": (product(guidance=99.0), [("INVALID_PARAMETER", ["parameters", "guidance"])]),
    "too long": (product("x" * 5000), [("INVALID_PARAMETER", ["parameters", "prompt"])]),
    "missing": (
        {"workflowName": "product-image", "parameters": {}},
        [("MISSING_PARAMETER", ["parameters", "prompt"])],
    ),
    "unknown": (product(colour="red"), [("UNKNOWN_PARAMETER", ["parameters", "colour"])]),
    "each bad field reported": (
        {"workflowName": "product-image", "parameters": {"steps": 0, "seed": -1, "x": 1}},
        _errors(
            ("INVALID_PARAMETER", ["parameters", "steps"]),
            ("INVALID_PARAMETER", ["parameters", "seed"]),
            ("MISSING_PARAMETER", ["parameters", "prompt"]),
            ("UNKNOWN_PARAMETER", ["parameters", "x"]),
        ),
    ),
    "parameters not an object": (
        {"workflowName": "product-image", "parameters": ["a pink shoe"]},
        [("INVALID_PARAMETER", ["parameters"])],
    ),
    "unknown workflow": (
        {"workflowName": "no-such-flow", "parameters": {}},
        [("UNKNOWN_WORKFLOW", ["workflowName"])],
    ),
    "file not uploaded here": (
        img2img("http://elsewhere.example/cat.png"),
        [("INVALID_PARAMETER", ["parameters", "image"])],
    ),
    "file url of nothing stored": (
        img2img("{base}/files/uploads/nothing/here.png"),
        [("INVALID_PARAMETER", ["parameters", "image"])],
    ),
    "file url escaping the root": (
        img2img("{base}/files/../../etc/passwd"),
        [("INVALID_PARAMETER", ["parameters", "image"])],
    ),
    "priority out of range": (
        {**product(), "priority": 1000},
        [("INVALID_PRIORITY", ["priority"])],
    ),
    "empty idempotency key": (
        {**product(), "idempotencyKey": ""},
        [("INVALID_IDEMPOTENCY_KEY", ["idempotencyKey"])],
    ),
    "malformed session id": (
        {**product(), "sessionId": "not-an-id"},
        [("INVALID_ID", ["sessionId"])],
    ),
    "a job id as session id": (
        {**product(), "sessionId": gid("ImageJob", uuid.uuid4())},
        [("INVALID_ID", ["sessionId"])],
    ),
    "no such session": (
        {**product(), "sessionId": gid("Session", uuid.uuid4())},
        [("SESSION_NOT_FOUND", ["sessionId"])],
    ),
    "another user's session": (
        {**product(), "sessionId": "{bob_session}"},
        [("SESSION_NOT_FOUND", ["sessionId"])],
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
async def test_bad_input_is_a_user_error_and_stores_nothing(
    app: App, bus: EventBus, pool: asyncpg.Pool, sessions: dict[str, str], case: str
) -> None:
    raw, expected = BAD_INPUTS[case]
    submitted = fill(raw, {"base": app.url, "bob_session": sessions["bob"]})
    before = await job_count(pool)
    async with bus.subscribe(feed(app, "alice")) as sub:
        body = await app.clients["alice"].data(SUBMIT, {"input": submitted})
        await quiet(sub, lambda e: e["status"] == "pending")  # no job was made
    result = body["submitJob"]
    assert result["job"] is None
    assert _errors(*((e["code"], e["field"]) for e in result["userErrors"])) == _errors(*expected)
    assert all(e["message"] for e in result["userErrors"])
    assert await job_count(pool) == before
    assert (await app.clients["alice"].data("{ me { id } }"))["me"], "still serving"


async def test_idempotency_key(app: App, pool: asyncpg.Pool) -> None:
    alice, bob = app.clients["alice"], app.clients["bob"]
    request = {**product("a key-ed shoe"), "idempotencyKey": "order-17"}
    before = await job_count(pool)
    first = (await alice.data(SUBMIT, {"input": request}))["submitJob"]["job"]
    again = (await alice.data(SUBMIT, {"input": request}))["submitJob"]
    assert again["userErrors"] == [] and again["job"]["id"] == first["id"]
    assert again["job"]["parameters"]["seed"] == first["parameters"]["seed"]
    assert await job_count(pool) == before + 2, "one job and its key, once"

    changed = {**request, "parameters": {"prompt": "another shoe"}}
    reused = (await alice.data(SUBMIT, {"input": changed}))["submitJob"]
    assert reused["job"] is None
    assert [(e["code"], e["field"]) for e in reused["userErrors"]] == [
        ("IDEMPOTENCY_KEY_REUSED", ["idempotencyKey"])
    ]
    assert "different request" in reused["userErrors"][0]["message"]
    assert await job_count(pool) == before + 2

    # Keys are per user: Bob's "order-17" is his own.
    bobs = (await bob.data(SUBMIT, {"input": changed}))["submitJob"]
    assert bobs["userErrors"] == [] and bobs["job"]["id"] != first["id"]


async def test_anonymous_may_not_submit_retry_or_cancel(app: App, pool: asyncpg.Pool) -> None:
    anonymous = app.clients["anonymous"]
    job = await make_job(pool, app, "alice", "failed", public=True)
    before = await job_count(pool)
    for query, variables in ((SUBMIT, {"input": product()}), (RETRY, {"id": job}),
                             (CANCEL, {"id": job})):  # fmt: skip
        body = await anonymous.post(query, variables)
        assert codes(body) == ["UNAUTHENTICATED"] and body["data"] is None
    assert await job_count(pool) == before


async def test_retry_a_finished_job(app: App, bus: EventBus, pool: asyncpg.Pool) -> None:
    alice = app.clients["alice"]
    async with pool.acquire() as conn:
        session = await create_session(conn, user_id=app.uid("alice"), user_product_prompt="bag")
    failed = await make_job(pool, app, "alice", "failed", public=True, priority=3,
                            session_id=session["id"])  # fmt: skip
    original = (await alice.data(JOB, {"id": failed}))["job"]
    async with bus.subscribe(feed(app, "alice")) as sub:
        body = (await alice.data(RETRY, {"id": failed}))["retryJob"]
        job = body["job"]
        assert body["userErrors"] == [] and job["id"] != failed and job["status"] == "PENDING"
        assert job["parameters"] == original["parameters"], "the recorded seed is replayed"
        assert job["workflowName"] == "product-image" and job["public"] is True
        assert job["session"] == {"id": gid("Session", session["id"])}
        assert (await finished(sub, job["id"]))["status"] == "completed"
    async with pool.acquire() as conn:
        row = await get_job(conn, IMAGE, row_id(job["id"]))
    assert row is not None and row["priority"] == 3


async def test_retry_by_an_admin_stays_the_owners(app: App, pool: asyncpg.Pool) -> None:
    cancelled = await make_job(pool, app, "alice", "cancelled")
    body = (await app.clients["admin"].data(RETRY, {"id": cancelled}))["retryJob"]
    assert body["userErrors"] == []
    assert body["job"]["owner"]["id"] == gid("User", app.uid("alice"))


async def test_retry_refusals(app: App, pool: asyncpg.Pool) -> None:
    alice, bob = app.clients["alice"], app.clients["bob"]
    private = await make_job(pool, app, "alice", "failed")
    public = await make_job(pool, app, "alice", "completed", public=True)
    running = await make_job(pool, app, "alice", "processing")
    before = await job_count(pool)
    cases = [
        (bob, private, "NOT_FOUND"),  # not his: exactly like an unknown id
        (bob, public, "NOT_FOUND"),  # visible to him, still not his to retry
        (bob, gid("ImageJob", uuid.uuid4()), "NOT_FOUND"),
        (alice, "garbage", "INVALID_ID"),
        (alice, gid("Session", uuid.uuid4()), "INVALID_ID"),
        (alice, running, "RETRY_NOT_ALLOWED"),
    ]
    for client, job, code in cases:
        body = (await client.data(RETRY, {"id": job}))["retryJob"]
        assert body["job"] is None, (job, code)
        assert [(e["code"], e["field"]) for e in body["userErrors"]] == [(code, ["id"])]
    messages = {
        e["message"]
        for client, job, _ in cases[:3]
        for e in (await client.data(RETRY, {"id": job}))["retryJob"]["userErrors"]
    }
    assert len(messages) == 1, "another user's job reads exactly like a missing one"
    assert await job_count(pool) == before


async def test_cancel_a_finished_job(app: App, pool: asyncpg.Pool) -> None:
    alice = app.clients["alice"]
    for status in ("completed", "failed", "cancelled"):
        job = await make_job(pool, app, "alice", status)
        body = (await alice.data(CANCEL, {"id": job}))["cancelJob"]
        assert body["job"] is None
        assert [(e["code"], e["field"]) for e in body["userErrors"]] == [
            ("NOT_CANCELLABLE", ["id"])
        ]
        assert status in body["userErrors"][0]["message"]
        assert (await alice.data(JOB, {"id": job}))["job"]["status"] == status.upper()
