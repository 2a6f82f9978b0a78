"""trackComfyJob: a prompt POSTed straight to the worker (as the studio's pages do) is
followed as a job, whether it is queued, running or already finished when tracked."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from comfygraph.comfy.templates import bind, load_templates, validate
from tests.mutations.conftest import App

TRACK = """mutation($input: TrackComfyJobInput!) { trackComfyJob(input: $input) {
  job { ... on GenerationJob { id status comfyJobId comfyUrl } }
  userErrors { field code message } } }"""
JOB = """query($id: ID!) { job(id: $id) { ... on GenerationJob { id status progress
  outputs { kind url } } } }"""
PARAMS = {"prompt": "a pink shoe", "width": 256, "height": 256, "steps": 30}


async def post_prompt(emulator: str) -> str:
    """What the studio's browser pages do: POST /prompt on the worker themselves."""
    template = load_templates().get("product-image")
    assert template is not None
    # a prompt of its own each time: the same graph again would run from the cache
    params = {**PARAMS, "prompt": f"a pink shoe {uuid.uuid4().hex[:8]}"}
    clean, errors = validate(template, params, is_allowed_file=lambda url: False)
    assert not errors
    prompt_id = str(uuid.uuid4())
    async with httpx.AsyncClient() as http:
        r = await http.post(
            f"{emulator}/prompt",
            json={"prompt": bind(template, clean, {}), "prompt_id": prompt_id, "client_id": "page"},
        )
        assert r.status_code == 200, r.text
    return prompt_id


async def state(emulator: str, prompt_id: str) -> str:
    async with httpx.AsyncClient() as http:
        if (await http.get(f"{emulator}/history/{prompt_id}")).json():
            return "done"
        queue = (await http.get(f"{emulator}/queue")).json()
    if any(item[1] == prompt_id for item in queue["queue_running"]):
        return "running"
    if any(item[1] == prompt_id for item in queue["queue_pending"]):
        return "queued"
    return "unknown"


async def track(app: App, emulator: str, prompt_id: str, **more: Any) -> dict[str, Any]:
    body = await app.clients["alice"].data(
        TRACK,
        {"input": {"workerUrl": emulator, "promptId": prompt_id,
                   "workflowName": "product-image", "parameters": PARAMS, **more}},
    )  # fmt: skip
    return dict(body["trackComfyJob"])


async def finished(app: App, job_id: str) -> dict[str, Any]:
    async with asyncio.timeout(60):
        while True:
            job = (await app.clients["alice"].data(JOB, {"id": job_id}))["job"]
            if job["status"] != "PROCESSING":
                return dict(job)
            await asyncio.sleep(0.1)


async def test_a_prompt_is_followed_queued_running_or_finished(app: App, emulator_url: str) -> None:
    running, queued = await post_prompt(emulator_url), await post_prompt(emulator_url)
    seen = (await state(emulator_url, running), await state(emulator_url, queued))
    jobs = {
        "running": await track(app, emulator_url, running),
        "queued": await track(app, emulator_url, queued),
    }
    assert seen == ("running", "queued"), seen  # the emulator was slow enough to see both
    for result in jobs.values():
        assert result["userErrors"] == [] and result["job"]["status"] == "PROCESSING"
    # the same prompt tracked twice is the same job
    again = await track(app, emulator_url, queued)
    assert again["job"]["id"] == jobs["queued"]["job"]["id"]
    for result in jobs.values():
        job = await finished(app, result["job"]["id"])
        assert job["status"] == "COMPLETED" and job["progress"] == 100
        assert job["outputs"] and job["outputs"][0]["url"].startswith(app.url)  # copied to storage

    done = await post_prompt(emulator_url)
    async with asyncio.timeout(60):
        while True:  # the worker's history, polled as the studio's page would
            if await state(emulator_url, done) == "done":
                break
            await asyncio.sleep(0.1)
    adopted = await track(app, emulator_url, done)
    assert adopted["userErrors"] == []
    job = await finished(app, adopted["job"]["id"])
    assert job["status"] == "COMPLETED" and job["outputs"]
    async with httpx.AsyncClient() as http:
        assert (await http.get(job["outputs"][0]["url"])).status_code == 200


async def test_unknown_prompts_and_workers_are_user_errors(app: App, emulator_url: str) -> None:
    result = await track(app, emulator_url, str(uuid.uuid4()))
    assert [e["code"] for e in result["userErrors"]] == ["UNKNOWN_PROMPT"]
    result = await track(app, "http://169.254.169.254", str(uuid.uuid4()))
    assert [e["code"] for e in result["userErrors"]] == ["UNKNOWN_WORKER"]
    result = await track(app, emulator_url, "x" * 500)
    assert [e["code"] for e in result["userErrors"]] == ["INVALID_PROMPT_ID"]
