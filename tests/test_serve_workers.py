"""`serve --demo --workers 2`: every process runs with the parent's full settings (the
demo worker, the public base URL from --port), so jobs complete with file URLs that work."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.servers import free_port

SUBMIT = """mutation { submitJob(input: {workflowName: "product-image",
  parameters: {prompt: "pink tennis shoes"}}) {
  job { ... on GenerationJob { id } } userErrors { code message } } }"""
READ = """query($id: ID!) { job(id: $id) { ... on GenerationJob { status errorMessage
  outputs { url } } } }"""


def _wait(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_demo_with_two_worker_processes_completes_jobs_with_working_urls(
    dsn: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PUBLIC_BASE_URL"}
    env.update(DATABASE_URL=dsn, COMFYGRAPH_DATA_DIR=str(tmp_path), COMFY_WORKERS="")
    out = tmp_path / "stdout.txt"
    with out.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "comfygraph.server.cli", "serve", "--demo", "--workers", "2",
             "--port", str(port)],
            env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        token = _wait(lambda: re.search(r"token\s+: (\S+)", out.read_text()), 90, "the banner")
        auth = {"Authorization": f"Bearer {token.group(1)}"}
        with httpx.Client(base_url=base, headers=auth, timeout=30) as client:
            _wait(lambda: client.get("/readyz").status_code == 200, 90, "/readyz")

            def gql(query: str, **variables: object) -> dict:
                body = client.post("/graphql", json={"query": query, "variables": variables})
                assert body.status_code == 200, body.text
                return body.json()["data"]

            # Each new connection may land on either process: both must have the worker.
            for _ in range(4):
                with httpx.Client(base_url=base, timeout=30) as fresh:
                    listed = fresh.post("/graphql", json={"query": "{ workers { url } }"})
                    assert listed.json()["data"]["workers"], listed.text
            ids = []
            for _ in range(3):
                submitted = gql(SUBMIT)["submitJob"]
                assert not submitted["userErrors"], submitted
                ids.append(submitted["job"]["id"])
            for job_id in ids:
                job = _wait(
                    lambda jid=job_id: (j := gql(READ, id=jid)["job"])["status"]
                    in ("COMPLETED", "FAILED") and j,
                    120, f"job {job_id}",
                )  # fmt: skip
                assert job["status"] == "COMPLETED", job
                assert job["outputs"]
                for output in job["outputs"]:
                    assert output["url"].startswith(f"{base}/files/"), output["url"]
                    assert client.get(output["url"]).status_code == 200
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
