"""Issue 11 finding 5 (private files stay private) and issue 12's object storage, through
the app on real HTTP, on local files and on S3 (moto): signed, expiring /files URLs that
stop answering once the job is deleted or private, inputs only from what the submitter
may see, nosniff and Content-Disposition, polyglot uploads refused."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

from comfygraph.bus import EventBus
from comfygraph.db.visibility import Viewer
from comfygraph.storage import open_storage
from comfygraph.storage.s3 import S3Options
from comfygraph.studio.files import FileSigner, Grant
from tests.mutations import media
from tests.mutations.conftest import SECRET, App
from tests.mutations.test_submit import JOB, SUBMIT, UPLOAD, feed, finished

SET_PUBLIC = """mutation($id: ID!, $public: Boolean!) { setJobPublic(id: $id, public: $public) {
  job { ... on GenerationJob { id public } } userErrors { code } } }"""
DELETE = "mutation($id: ID!) { deleteJob(id: $id) { deletedId userErrors { code } } }"


async def fetch(url: str) -> httpx.Response:
    """GET a file URL as a browser would: following /files' redirect to S3."""
    async with httpx.AsyncClient(timeout=30, follow_redirects=True) as http:
        return await http.get(url)


async def first_hop(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.get(url)


async def upload(app: App, who: str, content: bytes, name: str = "in.png") -> dict[str, Any]:
    body = await app.clients[who].upload(UPLOAD, name, content, "image/png")
    result: dict[str, Any] = body["data"]["uploadFile"]
    return result


def unsigned(url: str) -> str:
    return url.split("?", 1)[0]


def tampered(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query)) | changes
    return parts._replace(query=urlencode(query)).geturl()


async def run_job(app: App, bus: EventBus, who: str, image_url: str, public: bool) -> str:
    async with bus.subscribe(feed(app, who)) as sub:
        body = await app.clients[who].data(SUBMIT, {"input": {
            "workflowName": "img2img", "public": public,
            "parameters": {"image": image_url, "prompt": "a watercolor cat"}}})  # fmt: skip
        assert body["submitJob"]["userErrors"] == []
        job_id: str = body["submitJob"]["job"]["id"]
        assert (await finished(sub, job_id))["status"] == "completed"
    return job_id


async def test_upload_urls_are_signed_and_served_with_safe_headers(app: App) -> None:
    content = media.png((40, 30))
    stored = await upload(app, "alice", content)
    assert stored["userErrors"] == [] and "sig=" in stored["url"] and "exp=" in stored["url"]
    hop = await first_hop(stored["url"])
    assert hop.headers["x-content-type-options"] == "nosniff"
    got = await fetch(stored["url"])
    assert got.status_code == 200 and got.content == content
    assert got.headers["content-type"] == "image/png"
    assert got.headers["content-disposition"].startswith("inline")
    # On main /files is a static mount: the bare URL answers 200 to anyone, forever.
    for bad in (
        unsigned(stored["url"]),
        tampered(stored["url"], exp="9999999999"),
        tampered(stored["url"], u="-"),
        tampered(stored["url"], sig="A" * 32),
        tampered(stored["url"], exp="1000"),
    ):
        assert (await first_hop(bad)).status_code == 404, bad


async def test_polyglot_uploads_are_refused(app: App) -> None:
    html = b"<html><body><script>alert(document.cookie)</script></body></html>"
    cases = {
        "png+html": media.png() + html,
        "gif+script": media.image("GIF") + b"<script src=//evil.example/x.js></script>",
        "id3+html": media.mp3() + b"\x00" * 70_000 + html,  # past the sniffed head
    }
    for name, content in cases.items():
        stored = await upload(app, "alice", content, f"{name}.png")
        assert [e["code"] for e in stored["userErrors"]] == ["UNSAFE_FILE"], name
        assert stored["url"] is None


async def test_bob_cannot_submit_alices_private_upload(app: App) -> None:
    stored = await upload(app, "alice", media.png())
    for url in (stored["url"], unsigned(stored["url"])):
        body = await app.clients["bob"].data(SUBMIT, {"input": {"workflowName": "img2img",
            "parameters": {"image": url, "prompt": "mine now"}}})  # fmt: skip
        errors = body["submitJob"]["userErrors"]
        assert [(e["code"], e["field"]) for e in errors] == [
            ("INVALID_PARAMETER", ["parameters", "image"])
        ], url
        assert body["submitJob"]["job"] is None


async def test_private_and_deleted_jobs_files_stop_answering(app: App, bus: EventBus) -> None:
    stored = await upload(app, "alice", media.png((96, 64)))
    job_id = await run_job(app, bus, "alice", stored["url"], public=True)
    anonymous = (await app.clients["anonymous"].data(JOB, {"id": job_id}))["job"]
    mine = (await app.clients["alice"].data(JOB, {"id": job_id}))["job"]
    seen_by_all = [anonymous["outputImageUrls"][0], anonymous["outputs"][0]["url"]]
    seen_by_all.append(anonymous["inputImageUrls"][0])
    # Another user's copy names no viewer either: shared streams hand one payload to many.
    bobs = (await app.clients["bob"].data(JOB, {"id": job_id}))["job"]
    assert "u=-" in bobs["outputImageUrls"][0] and "u=-" not in mine["outputImageUrls"][0]
    for url in seen_by_all:
        got = await fetch(url)
        assert got.status_code == 200 and got.headers["content-type"] == "image/png", url
    # Bob may reuse a public job's output as his own input.
    body = await app.clients["bob"].data(SUBMIT, {"input": {"workflowName": "img2img",
        "parameters": {"image": seen_by_all[0], "prompt": "remix"}}})  # fmt: skip
    assert body["submitJob"]["userErrors"] == []

    await app.clients["alice"].data(SET_PUBLIC, {"id": job_id, "public": False})
    for url in seen_by_all:
        assert (await first_hop(url)).status_code == 404, url
    assert (await fetch(mine["outputImageUrls"][0])).status_code == 200  # still hers
    await app.clients["alice"].data(DELETE, {"id": job_id})
    assert (await first_hop(mine["outputImageUrls"][0])).status_code == 404


async def test_outputs_land_in_the_configured_storage(app: App, bus: EventBus) -> None:
    stored = await upload(app, "alice", media.png((64, 48)))
    job_id = await run_job(app, bus, "alice", stored["url"], public=False)
    job = (await app.clients["alice"].data(JOB, {"id": job_id}))["job"]
    s = app.settings
    storage = open_storage(
        s.effective_storage_url(),
        s.public_base_url or "",
        S3Options(s.s3_endpoint_url, s.aws_region, s.aws_access_key_id, s.aws_secret_access_key),
    )
    key = storage.key_for_url(job["outputImageUrls"][0])
    assert key is not None and key.startswith("workflows/img2img/")
    info = await storage.head(key)
    got = await fetch(job["outputImageUrls"][0])
    assert info is not None and info.size == len(got.content) > 0


async def test_anything_but_media_is_an_attachment(app: App) -> None:
    """A file that is not image/video/audio (a worker's HTML, say) is never shown inline."""
    s = app.settings
    storage = open_storage(
        s.effective_storage_url(),
        s.public_base_url or "",
        S3Options(s.s3_endpoint_url, s.aws_region, s.aws_access_key_id, s.aws_secret_access_key),
    )
    alice = app.uid("alice")
    page = b"<!doctype html><script>alert(1)</script>"
    stored = await storage.put(f"uploads/{alice}/r0/page.html", page)
    signer = FileSigner(storage, SECRET, ttl_seconds=60, public_ttl_seconds=60)
    url = signer.sign(stored.url, Grant.owner(alice), Viewer(alice))
    assert (await first_hop(url)).headers["x-content-type-options"] == "nosniff"
    got = await fetch(url)
    assert got.status_code == 200 and got.content == page
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["content-disposition"].startswith("attachment")
    # Signed for Alice: it says nothing to Bob's forged copy.
    assert (await first_hop(tampered(url, u=app.uid("bob").hex))).status_code == 404
