"""The client: submit, wait, progress, feed, upload (see the package docstring)."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import websockets

from comfygraph.client.errors import ApiError, UserErrors

FINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
_JOB_FIELDS = """id workflowName status progress errorMessage costUsd createdAt
  outputs { kind url filename mimeType width height durationSeconds sizeBytes }"""
SUBMIT = f"""mutation($input: SubmitJobInput!) {{ submitJob(input: $input) {{
  job {{ {_JOB_FIELDS} }} userErrors {{ field code message }} }} }}"""
JOB = f"query($id: ID!) {{ job(id: $id) {{ ... on GenerationJob {{ {_JOB_FIELDS} }} }} }}"
FEED = f"""query($first: Int, $after: String, $filter: JobFilter) {{
  jobs(first: $first, after: $after, filter: $filter) {{
    edges {{ node {{ ... on GenerationJob {{ {_JOB_FIELDS} }} }} }}
    pageInfo {{ hasNextPage endCursor }} }} }}"""
PROGRESS = f"""subscription($id: ID!) {{ jobProgress(id: $id) {{
  status progress node queuePosition etaSeconds previewUrl
  job {{ ... on GenerationJob {{ {_JOB_FIELDS} }} }} }} }}"""
UPLOAD = """mutation($file: Upload!) { uploadFile(file: $file) {
  url name contentType sizeBytes userErrors { field code message } } }"""


@dataclass(frozen=True)
class JobOutput:
    kind: str
    url: str
    filename: str
    mime_type: str | None
    width: int | None
    height: int | None
    duration_seconds: float | None
    size_bytes: float | None


@dataclass(frozen=True)
class Job:
    id: str
    workflow_name: str
    status: str
    progress: float
    error_message: str | None
    cost_usd: float | None
    created_at: str
    outputs: tuple[JobOutput, ...]

    @property
    def done(self) -> bool:
        return self.status in FINAL

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Job:
        outputs = tuple(
            JobOutput(o["kind"], o["url"], o["filename"], o.get("mimeType"), o.get("width"),
                      o.get("height"), o.get("durationSeconds"), o.get("sizeBytes"))
            for o in data.get("outputs") or ()
        )  # fmt: skip
        return cls(data["id"], data["workflowName"], data["status"], data["progress"],
                   data.get("errorMessage"), data.get("costUsd"), data["createdAt"],
                   outputs)  # fmt: skip


@dataclass(frozen=True)
class Progress:
    status: str
    progress: float
    node: str | None
    queue_position: int | None
    eta_seconds: float | None
    preview_url: str | None
    job: Job


class Client:
    """One API endpoint and one bearer token; use as `async with`."""

    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=timeout)
        self._ids = itertools.count(1)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def execute(self, query: str, variables: Mapping[str, Any] | None = None) -> Any:
        """Run a query or mutation; its `data`, or ApiError with the errors' codes."""
        response = await self.http.post("/graphql", json={"query": query, "variables": variables})
        body = response.json()
        if body.get("errors"):
            raise ApiError(body["errors"])
        return body["data"]

    async def submit(
        self, workflow: str, parameters: Mapping[str, Any], *, public: bool = False,
        idempotency_key: str | None = None, priority: int = 0,
    ) -> Job:  # fmt: skip
        """Queue a job; UserErrors when a parameter is wrong (nothing is queued then)."""
        spec: dict[str, Any] = {"workflowName": workflow, "parameters": dict(parameters),
                                "public": public, "priority": priority}  # fmt: skip
        if idempotency_key is not None:
            spec["idempotencyKey"] = idempotency_key
        payload = (await self.execute(SUBMIT, {"input": spec}))["submitJob"]
        if payload["userErrors"]:
            raise UserErrors(payload["userErrors"])
        return Job.from_json(payload["job"])

    async def job(self, job_id: str) -> Job | None:
        data = (await self.execute(JOB, {"id": job_id}))["job"]
        return None if data is None else Job.from_json(data)

    async def progress(self, job_id: str) -> AsyncIterator[Progress]:
        """jobProgress over graphql-transport-ws: the current state first, then each
        change; ends after the final status."""
        async for event in self.subscribe(PROGRESS, {"id": job_id}):
            data = event["jobProgress"]
            yield Progress(data["status"], data["progress"], data.get("node"),
                           data.get("queuePosition"), data.get("etaSeconds"),
                           data.get("previewUrl"), Job.from_json(data["job"]))  # fmt: skip

    async def wait(self, job_id: str) -> Job:
        """The job once it reached a final status (COMPLETED, FAILED or CANCELLED)."""
        last: Job | None = None
        async for event in self.progress(job_id):
            last = event.job
        if last is None or not last.done:
            found = await self.job(job_id)
            if found is None:
                raise ApiError([{"message": "no such job", "extensions": {"code": "NOT_FOUND"}}])
            last = found
        return last

    async def feed(
        self, *, first: int = 20, filter: Mapping[str, Any] | None = None, pages: int | None = None
    ) -> AsyncIterator[Job]:
        """The jobs feed, newest first, page after page (all of them, or `pages`)."""
        after: str | None = None
        for _ in itertools.count() if pages is None else range(pages):
            variables = {"first": first, "after": after, "filter": filter}
            page = (await self.execute(FEED, variables))["jobs"]
            for edge in page["edges"]:
                yield Job.from_json(edge["node"])
            if not page["pageInfo"]["hasNextPage"]:
                return
            after = page["pageInfo"]["endCursor"]

    async def upload(self, path: str | Path, *, content_type: str | None = None) -> str:
        """Store a file (the GraphQL multipart request spec); its URL, for a parameter."""
        path = Path(path)
        operations = json.dumps({"query": UPLOAD, "variables": {"file": None}})
        content = path.read_bytes()
        kind = content_type or "application/octet-stream"
        form = {"operations": operations, "map": json.dumps({"0": ["variables.file"]})}
        response = await self.http.post(
            "/graphql", data=form, files={"0": (path.name, content, kind)}
        )
        body = response.json()
        if body.get("errors"):
            raise ApiError(body["errors"])
        payload = body["data"]["uploadFile"]
        if payload["userErrors"]:
            raise UserErrors(payload["userErrors"])
        url: str = payload["url"]
        return url

    async def subscribe(
        self, query: str, variables: Mapping[str, Any] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Any subscription over graphql-transport-ws: each event's `data`."""
        ws_url = "ws" + self.base_url.removeprefix("http") + "/graphql"
        init: dict[str, Any] = {"type": "connection_init"}
        if self.token:
            init["payload"] = {"Authorization": f"Bearer {self.token}"}
        protocols = [websockets.Subprotocol("graphql-transport-ws")]
        async with websockets.connect(ws_url, subprotocols=protocols) as ws:
            await ws.send(json.dumps(init))
            ack = json.loads(await ws.recv())
            if ack.get("type") != "connection_ack":
                raise ApiError([ack.get("payload") or {"message": str(ack)}])
            op = str(next(self._ids))
            payload = {"query": query, "variables": variables}
            await ws.send(json.dumps({"id": op, "type": "subscribe", "payload": payload}))
            async for raw in ws:
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "ping":
                    await ws.send(json.dumps({"type": "pong"}))
                elif kind == "next" and message.get("id") == op:
                    if message["payload"].get("errors"):
                        raise ApiError(message["payload"]["errors"])
                    yield message["payload"]["data"]
                elif kind == "error" and message.get("id") == op:
                    raise ApiError(message["payload"])
                elif kind == "complete" and message.get("id") == op:
                    return
