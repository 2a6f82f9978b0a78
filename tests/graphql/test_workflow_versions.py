"""Workflow templates managed at runtime (issue 15): publishWorkflow on one replica is
submittable through another within seconds, jobs record the version they ran and
retryJob runs that version, deprecateWorkflow hides a workflow, bad templates and
non-admins get userErrors, and `comfygraph workflows add` publishes from a shell."""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from comfygraph.comfy.templates import BUILTIN_DIR
from comfygraph.emulator import create_emulator_app
from comfygraph.server.app import create_app
from comfygraph.server.settings import Settings, WorkerSpec
from comfygraph.studio.auth import issue_token
from tests.db.factories import make_user
from tests.graphql.client import GraphQLClient, row_id
from tests.graphql.conftest import SECRET
from tests.servers import serve_in_thread
from tests.test_cli import comfygraph

WORKFLOWS = "{ workflows { name version description } }"
PUBLISH = """mutation($t: JSON!) { publishWorkflow(template: $t) {
  workflow { name version outputType parameters { name } } userErrors { code field message } } }"""
DEPRECATE = """mutation($n: String!) { deprecateWorkflow(name: $n) {
  workflow { name } userErrors { code field } } }"""
SUBMIT = """mutation($w: String!) { submitJob(input: {workflowName: $w,
  parameters: {prompt: "a shoe", width: 256, height: 256}}) {
  job { ... on GenerationJob { id } } userErrors { code field } } }"""
RETRY = """mutation($id: ID!) { retryJob(id: $id) {
  job { ... on GenerationJob { id } } userErrors { code field } } }"""
STATUS = "query($id: ID!) { job(id: $id) { ... on GenerationJob { status errorMessage } } }"


def until(what: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll a state over HTTP until it holds (a deadline, not a sleep as synchronisation)."""
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def template(name: str, description: str) -> dict[str, Any]:
    data = json.loads((BUILTIN_DIR / "product-image.json").read_text())
    return {**copy.deepcopy(data), "name": name, "description": description}


@pytest.fixture(scope="module")
async def users(pool: asyncpg.Pool) -> dict[str, asyncpg.Record]:
    """Users only: no other jobs in this module's database for the worker to run first."""
    async with pool.acquire() as conn:
        return {"alice": await make_user(conn), "admin": await make_user(conn, role="admin")}


@pytest.fixture(scope="module")
def replicas(
    settings: Settings,
    dsn: str,
    users: dict[str, asyncpg.Record],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[dict[str, GraphQLClient], dict[str, GraphQLClient]]]:
    """Two apps on one database: `a` has no worker, `b` runs jobs on an emulator."""
    out = Path(tmp_path_factory.mktemp("emulator"))
    with serve_in_thread(create_emulator_app(speed=1000, output_dir=out)) as worker:
        fast = settings.model_copy(
            update={
                "comfy_workers": (WorkerSpec(worker),),
                "dispatch_poll_interval": 0.2,
                "worker_health_interval": 0.3,
            }
        )
        with (
            serve_in_thread(create_app(settings, dsn=dsn)) as a,
            serve_in_thread(create_app(fast, dsn=dsn)) as b,
        ):
            sides = []
            for url in (a, b):
                sides.append({n: GraphQLClient(url, issue_token(SECRET, r["id"], role=r["role"]))
                              for n, r in users.items()})  # fmt: skip
            healthy = "{ workers { healthy } }"
            until(lambda: sides[1]["admin"].data(healthy)["workers"][0]["healthy"])
            yield sides[0], sides[1]
            for side in sides:
                for client in side.values():
                    client.close()


def versions(client: GraphQLClient) -> dict[str, int]:
    return {w["name"]: w["version"] for w in client.data(WORKFLOWS)["workflows"]}


async def recorded_version(dsn: str, job: str) -> int | None:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(  # type: ignore[no-any-return]
            "SELECT template_version FROM image_jobs WHERE id = $1", row_id(job)
        )
    finally:
        await conn.close()


def test_publish_on_one_replica_runs_on_the_other_and_retry_keeps_the_version(
    replicas: tuple[dict[str, GraphQLClient], dict[str, GraphQLClient]], dsn: str
) -> None:
    a, b = replicas
    assert versions(b["alice"])["product-image"] == 0, "template files are version 0"
    refused = b["alice"].data(SUBMIT, {"w": "shoe-shot"})["submitJob"]
    assert refused["userErrors"][0]["code"] == "UNKNOWN_WORKFLOW"

    published = a["admin"].data(PUBLISH, {"t": template("shoe-shot", "first")})["publishWorkflow"]
    assert published["userErrors"] == []
    assert published["workflow"]["name"] == "shoe-shot" and published["workflow"]["version"] == 1
    start = time.monotonic()
    until(lambda: versions(b["alice"]).get("shoe-shot") == 1, timeout=5)
    seen_after = time.monotonic() - start
    assert seen_after < 5, f"replica b saw the publish after {seen_after:.2f}s"

    body = b["alice"].data(SUBMIT, {"w": "shoe-shot"})["submitJob"]
    assert body["userErrors"] == []
    first = body["job"]["id"]
    try:
        done = until(lambda: (j := b["alice"].data(STATUS, {"id": first})["job"])["status"]
                     in ("COMPLETED", "FAILED") and j)  # fmt: skip
    except AssertionError:
        raise AssertionError(b["alice"].data(STATUS, {"id": first})) from None
    assert done["status"] == "COMPLETED", done
    assert asyncio.run(recorded_version(dsn, first)) == 1

    # v2 drops the width/height parameters: a retry of the v1 job still runs v1
    v2 = template("shoe-shot", "second")
    v2["parameters"] = [p for p in v2["parameters"] if p["name"] not in ("width", "height")]
    again = b["admin"].data(PUBLISH, {"t": v2})["publishWorkflow"]
    assert again["userErrors"] == [] and again["workflow"]["version"] == 2
    until(lambda: versions(a["alice"]).get("shoe-shot") == 2, timeout=5)
    new = a["alice"].data(SUBMIT, {"w": "shoe-shot"})["submitJob"]
    assert {e["code"] for e in new["userErrors"]} == {"UNKNOWN_PARAMETER"}, "v2 is current"
    retried = a["alice"].data(RETRY, {"id": first})["retryJob"]
    assert retried["userErrors"] == []
    second = retried["job"]["id"]
    assert asyncio.run(recorded_version(dsn, second)) == 1
    until(lambda: b["alice"].data(STATUS, {"id": second})["job"]["status"] == "COMPLETED")


def test_deprecate_hides_it_from_new_submissions_everywhere(
    replicas: tuple[dict[str, GraphQLClient], dict[str, GraphQLClient]],
) -> None:
    a, b = replicas
    made = a["admin"].data(PUBLISH, {"t": template("old-shot", "soon gone")})["publishWorkflow"]
    assert made["userErrors"] == []
    until(lambda: "old-shot" in versions(b["alice"]), timeout=5)
    forbidden = b["alice"].data(DEPRECATE, {"n": "old-shot"})["deprecateWorkflow"]
    assert forbidden["userErrors"] == [{"code": "FORBIDDEN", "field": ["name"]}]
    unknown = b["admin"].data(DEPRECATE, {"n": "no-such"})["deprecateWorkflow"]
    assert unknown["userErrors"][0]["code"] == "UNKNOWN_WORKFLOW"
    gone = b["admin"].data(DEPRECATE, {"n": "old-shot"})["deprecateWorkflow"]
    assert gone["userErrors"] == [] and gone["workflow"]["name"] == "old-shot"
    until(lambda: "old-shot" not in versions(a["alice"]), timeout=5)
    refused = a["alice"].data(SUBMIT, {"w": "old-shot"})["submitJob"]
    assert refused["userErrors"][0]["code"] == "UNKNOWN_WORKFLOW"
    # publishing it again brings it back
    back = a["admin"].data(PUBLISH, {"t": template("old-shot", "back")})["publishWorkflow"]
    assert back["workflow"]["version"] == 2
    until(lambda: versions(b["alice"]).get("old-shot") == 2, timeout=5)


def test_bad_templates_and_non_admins_get_user_errors_naming_the_path(
    replicas: tuple[dict[str, GraphQLClient], dict[str, GraphQLClient]],
) -> None:
    a, _ = replicas
    good = template("bad-shot", "x")
    forbidden = a["alice"].data(PUBLISH, {"t": good})["publishWorkflow"]
    assert forbidden["userErrors"][0]["code"] == "FORBIDDEN" and forbidden["workflow"] is None
    cases: list[tuple[Any, list[str]]] = [
        ("not an object", ["template"]),
        ({**good, "graph": {}}, ["template", "graph"]),
        ({**good, "outputType": "HOLOGRAM"}, ["template", "outputType"]),
    ]
    wrong_type = copy.deepcopy(good)
    wrong_type["parameters"][0]["type"] = "COLOUR"
    cases.append((wrong_type, ["template", "parameters", "0", "type"]))
    wrong_bind = copy.deepcopy(good)
    wrong_bind["parameters"][1]["bind"] = ["999", "text"]
    cases.append((wrong_bind, ["template", "parameters", "1", "bind"]))
    for data, path in cases:
        body = a["admin"].data(PUBLISH, {"t": data})["publishWorkflow"]
        [error] = body["userErrors"]
        assert (error["code"], error["field"]) == ("INVALID_TEMPLATE", path), error
    assert "bad-shot" not in versions(a["alice"]), "nothing was stored"


def test_cli_workflows_add_publishes_for_running_replicas(
    replicas: tuple[dict[str, GraphQLClient], dict[str, GraphQLClient]],
    dsn: str,
    settings: Settings,
    tmp_path: Path,
) -> None:
    a, b = replicas
    env = {
        "DATABASE_URL": dsn,
        "COMFYGRAPH_DATA_DIR": str(tmp_path),
        "BROADCAST_URL": settings.effective_broadcast_url(),
    }  # the replicas' broadcast
    good = tmp_path / "cli-shot.json"
    good.write_text(json.dumps(template("cli-shot", "from a shell")))
    added = comfygraph("workflows", "add", str(good), env=env)
    assert added.returncode == 0, added.stderr
    assert "cli-shot: version 1" in added.stdout
    until(lambda: versions(b["alice"]).get("cli-shot") == 1, timeout=5)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**template("cli-bad", "x"), "outputType": "HOLOGRAM"}))
    refused = comfygraph("workflows", "add", str(bad), env=env)
    assert refused.returncode != 0 and refused.stderr.startswith("error:")
    assert "outputType" in refused.stderr
    assert "cli-bad" not in versions(a["alice"])
