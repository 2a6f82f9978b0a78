"""Signed webhooks end to end: the app runs jobs on the emulator and POSTs each event to
a loopback receiver; every delivery is verified with the `standardwebhooks` verifier."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from PIL import Image
from standardwebhooks.webhooks import Webhook

from tests.mutations.conftest import App
from tests.webhooks.receiver import Received, Receiver

SUBMIT = """mutation($input: SubmitJobInput!) { submitJob(input: $input) {
  job { ... on GenerationJob { id status } } userErrors { field code message } } }"""
CREATE = """mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) {
  endpoint { id url events global secret disabledAt } userErrors { field code message } } }"""
DELIVERIES = """query($id: ID!) { webhookDeliveries(endpointId: $id) {
  id webhookId event status attemptCount lastStatusCode
  attempts { statusCode latencyMs error responseBody } } }"""
CANCEL = """mutation($id: ID!) { cancelJob(id: $id) { job { ... on GenerationJob { id status } }
  userErrors { code } } }"""


def product(**more: Any) -> dict[str, Any]:
    params = {"prompt": "a pink shoe", "width": 256, "height": 256, "steps": 12}
    return {"workflowName": "product-image", "parameters": params, **more}


async def endpoint(app: App, who: str, url: str, events: list[str], **more: Any) -> dict:
    body = await app.clients[who].data(CREATE, {"input": {"url": url, "events": events, **more}})
    result = body["createWebhookEndpoint"]
    assert result["userErrors"] == [], result
    return dict(result["endpoint"])


async def submit(app: App, who: str, **more: Any) -> str:
    body = await app.clients[who].data(SUBMIT, {"input": product(**more)})
    assert body["submitJob"]["userErrors"] == [], body
    return str(body["submitJob"]["job"]["id"])


async def deliveries(
    app: App, who: str, endpoint_id: str, until: Any = lambda rows: True
) -> list[dict[str, Any]]:
    """The endpoint's deliveries once `until(rows)` holds (the receiver answers before
    the sender records the attempt, so its row lags the request a little)."""
    async with asyncio.timeout(20):
        while True:
            body = await app.clients[who].data(DELIVERIES, {"id": endpoint_id})
            rows: list[dict[str, Any]] = body["webhookDeliveries"]
            if until(rows):
                return rows
            await asyncio.sleep(0.05)


def verified(secret: str, got: Received) -> dict[str, Any]:
    """The payload, after the standardwebhooks verifier accepted the signature."""
    payload: dict[str, Any] = Webhook(secret).verify(got.body, got.headers)
    return payload


def events_for(receiver: Receiver, path: str, job: str) -> list[Received]:
    return [r for r in receiver.at(path) if json.loads(r.body)["data"]["id"] == job]


async def test_a_completed_job_is_delivered_signed_to_its_owner_and_global_endpoints(
    app: App, receiver: Receiver, emulator_url: str
) -> None:
    mine = await endpoint(app, "alice", f"{receiver.url}/alice", ["job.completed", "job.progress"])
    glob = await endpoint(
        app, "admin", f"{receiver.url}/global", ["job.completed"], **{"global": True}
    )
    bobs = await endpoint(app, "bob", f"{receiver.url}/bob", ["job.completed"])
    assert glob["global"] and not mine["global"] and mine["secret"].startswith("whsec_")
    job = await submit(app, "alice")

    def done() -> bool:
        return bool(
            [r for r in events_for(receiver, "/alice", job) if b"job.completed" in r.body]
            and events_for(receiver, "/global", job)
        )

    await receiver.wait_for(done)
    completed = [r for r in events_for(receiver, "/alice", job) if b"job.completed" in r.body]
    assert len(completed) == 1
    payload = verified(mine["secret"], completed[0])
    assert payload["type"] == "job.completed"
    assert (
        payload["data"]["status"] == "COMPLETED"
        and payload["data"]["workflowName"] == "product-image"
    )
    outputs = payload["data"]["outputs"]
    assert outputs and outputs[0]["kind"] == "IMAGE"
    async with httpx.AsyncClient() as http:  # the URL serves the stored file
        stored = await http.get(outputs[0]["url"])
        assert stored.status_code == 200
        # ... without the workflow the worker embedded in it (issue 15, clean outputs)
        original = await http.get(
            f"{emulator_url}/view", params={"filename": outputs[0]["filename"], "type": "output"}
        )
    assert "prompt" in Image.open(io.BytesIO(original.content)).text  # type: ignore[attr-defined]
    assert Image.open(io.BytesIO(stored.content)).text == {}  # type: ignore[attr-defined]
    # the global endpoint verifies with its own secret, not alice's
    g = events_for(receiver, "/global", job)[0]
    assert verified(glob["secret"], g)["data"]["id"] == job
    with pytest.raises(Exception, match="signature"):
        Webhook(mine["secret"]).verify(g.body, g.headers)
    assert events_for(receiver, "/bob", job) == []  # bob hears nothing of alice's job
    # the webhook-id is the delivery's, listed with its attempt
    rows = await deliveries(  # the receiver has it; its row says so a moment later
        app,
        "alice",
        mine["id"],
        lambda rows: any(
            d["event"] == "job.completed" and d["status"] == "delivered" for d in rows
        ),
    )
    done_row = next(d for d in rows if d["event"] == "job.completed" and d["status"] == "delivered")
    assert done_row["webhookId"] == completed[0].headers["webhook-id"]
    assert done_row["attempts"][0]["statusCode"] == 200
    # bob cannot read alice's deliveries
    body = await app.clients["bob"].post(DELIVERIES, {"id": mine["id"]})
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    del bobs


async def test_a_failed_attempt_is_retried_with_the_same_webhook_id(
    app: App, receiver: Receiver
) -> None:
    receiver.answer = lambda r, n: (503, {}, b"x" * 5000) if r.path == "/flaky" and n == 0 else 200
    ep = await endpoint(app, "bob", f"{receiver.url}/flaky", ["job.completed"])
    job = await submit(app, "bob")
    await receiver.wait_for(lambda: len(events_for(receiver, "/flaky", job)) == 2)
    first, second = events_for(receiver, "/flaky", job)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    verified(ep["secret"], second)
    rows = await deliveries(app, "bob", ep["id"], lambda rows: rows[0]["status"] != "pending")
    assert rows[0]["status"] == "delivered" and rows[0]["attemptCount"] == 2
    codes = [a["statusCode"] for a in rows[0]["attempts"]]
    assert codes == [503, 200]
    assert len(rows[0]["attempts"][0]["responseBody"].encode()) <= 1024  # bodies capped


async def test_410_disables_the_endpoint_and_a_redirect_is_not_followed(
    app: App, receiver: Receiver, pool: asyncpg.Pool
) -> None:
    def answer(r: Received, n: int) -> int | tuple[int, dict[str, str], bytes]:
        if r.path == "/gone":
            return 410
        if r.path == "/moved":
            return 302, {"location": f"{receiver.url}/elsewhere"}, b""
        return 200

    receiver.answer = answer
    gone = await endpoint(app, "alice", f"{receiver.url}/gone", ["job.completed"])
    moved = await endpoint(app, "alice", f"{receiver.url}/moved", ["job.completed"])
    job = await submit(app, "alice")
    await receiver.wait_for(
        lambda: bool(events_for(receiver, "/gone", job) and events_for(receiver, "/moved", job))
    )
    await deliveries(app, "alice", gone["id"], lambda rows: rows[0]["status"] == "failed")
    await deliveries(app, "alice", moved["id"], lambda rows: rows[0]["attempts"])
    listed = await app.clients["alice"].data("{ webhookEndpoints { id disabledAt } }")
    by_id = {e["id"]: e for e in listed["webhookEndpoints"]}
    assert by_id[gone["id"]]["disabledAt"] is not None
    assert by_id[moved["id"]]["disabledAt"] is None
    rows = (await app.clients["alice"].data(DELIVERIES, {"id": moved["id"]}))["webhookDeliveries"]
    assert rows[0]["attempts"][0]["statusCode"] == 302
    assert "not followed" in rows[0]["attempts"][0]["error"]
    assert receiver.at("/elsewhere") == []
    # a disabled endpoint gets no more deliveries
    async with pool.acquire() as conn:
        before = await conn.fetchval(
            "SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1",
            uuid.UUID(gone_uuid(gone["id"])),
        )
    later = await submit(app, "alice")
    await receiver.wait_for(lambda: bool(events_for(receiver, "/moved", later)))
    async with pool.acquire() as conn:
        after = await conn.fetchval(
            "SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1",
            uuid.UUID(gone_uuid(gone["id"])),
        )
    assert after == before


def gone_uuid(global_id: str) -> str:
    import base64

    raw = base64.urlsafe_b64decode(global_id + "=" * (-len(global_id) % 4)).decode()
    return raw.split(":", 1)[1]


async def test_one_off_webhook_url_cancel_and_redelivery(app: App, receiver: Receiver) -> None:
    receiver.answer = lambda r, n: 200
    alice = app.clients["alice"]
    job = await submit(app, "alice", webhookUrl=f"{receiver.url}/once")
    secret = (await alice.data("{ me { webhookSecret } }"))["me"]["webhookSecret"]
    assert secret and secret.startswith("whsec_")
    await receiver.wait_for(lambda: bool(events_for(receiver, "/once", job)))
    got = events_for(receiver, "/once", job)[0]
    assert verified(secret, got)["type"] in {"job.completed", "job.progress"}
    # bob cannot see alice's secret through her user object
    assert (await app.clients["bob"].data("{ me { webhookSecret } }"))["me"][
        "webhookSecret"
    ] is None

    ep = await endpoint(app, "alice", f"{receiver.url}/cancelled", ["job.cancelled"])
    body = await alice.data(SUBMIT, {"input": product(priority=-100)})
    pending = body["submitJob"]["job"]["id"]
    cancelled = (await alice.data(CANCEL, {"id": pending}))["cancelJob"]
    if cancelled["userErrors"]:
        pytest.skip("the job finished before it could be cancelled")
    await receiver.wait_for(lambda: bool(events_for(receiver, "/cancelled", pending)))
    payload = verified(ep["secret"], events_for(receiver, "/cancelled", pending)[0])
    assert payload["type"] == "job.cancelled" and payload["data"]["status"] == "CANCELLED"

    rows = await deliveries(app, "alice", ep["id"], lambda rows: rows[0]["status"] == "delivered")
    again = await alice.data(
        """mutation($id: ID!) { redeliverWebhook(id: $id) { delivery { id webhookId status }
           userErrors { code } } }""",
        {"id": rows[0]["id"]},
    )
    assert again["redeliverWebhook"]["delivery"]["status"] == "pending"
    await receiver.wait_for(lambda: len(events_for(receiver, "/cancelled", pending)) == 2)
    a, b = events_for(receiver, "/cancelled", pending)
    assert a.headers["webhook-id"] == b.headers["webhook-id"]
    # bob may not redeliver alice's
    other = await app.clients["bob"].data(
        "mutation($id: ID!) { redeliverWebhook(id: $id) { userErrors { code } } }",
        {"id": rows[0]["id"]},
    )
    assert other["redeliverWebhook"]["userErrors"] == [{"code": "NOT_FOUND"}]


async def test_rotation_signs_with_both_secrets_for_a_while(app: App, receiver: Receiver) -> None:
    receiver.answer = lambda r, n: 200
    ep = await endpoint(app, "bob", f"{receiver.url}/rotated", ["job.completed"])
    body = await app.clients["bob"].data(
        "mutation($id: ID!) { rotateWebhookSecret(id: $id) { endpoint { secret } } }",
        {"id": ep["id"]},
    )
    new = body["rotateWebhookSecret"]["endpoint"]["secret"]
    assert new != ep["secret"]
    job = await submit(app, "bob")
    await receiver.wait_for(lambda: bool(events_for(receiver, "/rotated", job)))
    got = events_for(receiver, "/rotated", job)[0]
    verified(new, got)
    verified(ep["secret"], got)  # receivers not yet updated keep verifying


async def test_bad_endpoints_are_user_errors(app: App) -> None:
    alice = app.clients["alice"]
    for url, events, code in (
        ("ftp://example.com/x", ["job.completed"], "INVALID_URL"),
        ("http://example.com/x", ["job.completed"], "INVALID_URL"),  # http: not allowed host
        ("https://example.com/x", ["job.exploded"], "INVALID_EVENT"),
        ("https://example.com/x", [], "INVALID_EVENT"),
    ):
        body = await alice.data(CREATE, {"input": {"url": url, "events": events}})
        codes = [e["code"] for e in body["createWebhookEndpoint"]["userErrors"]]
        assert codes == [code], (url, events, codes)
    body = await alice.post(
        CREATE, {"input": {"url": "https://example.com", "events": ["job.failed"], "global": True}}
    )
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    body = await alice.data(SUBMIT, {"input": product(webhookUrl="http://example.com/hook")})
    assert [e["code"] for e in body["submitJob"]["userErrors"]] == ["INVALID_URL"]
