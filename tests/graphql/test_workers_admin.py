"""Query.workers capability summaries (admins only), drainWorker / undrainWorker
(DRAINING then DRAINED), and blockedReason in GraphQL and /metrics (issue 13)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from comfygraph.emulator import create_emulator_app
from comfygraph.server.app import create_app
from comfygraph.server.settings import Settings, WorkerSpec
from tests.graphql.client import GraphQLClient
from tests.graphql.world import World
from tests.servers import serve_in_thread

WORKERS = "{ workers { url status draining capabilities { nodeCount modelCount nodes } } }"
SUBMIT = """mutation { submitJob(input: {workflowName: "product-image",
  parameters: {prompt: "a shoe"}}) { job { ... on GenerationJob { id } } userErrors { code } } }"""
JOB = "query($id: ID!) { job(id: $id) { ... on GenerationJob { status blockedReason comfyUrl } } }"
DRAIN = (
    "mutation($u: String!) { drainWorker(url: $u) { worker { url status } userErrors { code } } }"
)
UNDRAIN = (
    "mutation($u: String!) { undrainWorker(url: $u) { worker { status } userErrors { code } } }"
)


def until(what: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll a state over HTTP until it holds (a deadline, not a sleep as synchronisation)."""
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    tmp = Path(tmp_path_factory.mktemp("fleet"))
    lacking = create_emulator_app(speed=1000, output_dir=tmp / "a", missing_nodes=["KSampler"])
    with (
        serve_in_thread(lacking) as a,
        serve_in_thread(create_emulator_app(speed=1000, output_dir=tmp / "b")) as b,
    ):
        yield a, b


@pytest.fixture(scope="module")
def users(
    settings: Settings, dsn: str, fleet: tuple[str, str], world: World
) -> Iterator[dict[str, GraphQLClient]]:
    from comfygraph.studio.auth import issue_token
    from tests.graphql.conftest import SECRET

    specs = tuple(WorkerSpec(url) for url in fleet)
    fast = settings.model_copy(
        update={
            "comfy_workers": specs,
            "worker_health_interval": 0.3,
            "dispatch_poll_interval": 0.2,
        }
    )
    with serve_in_thread(create_app(fast, dsn=dsn)) as url:
        made = {n: GraphQLClient(url, issue_token(SECRET, r["id"], role=r["role"]))
                for n, r in world.users.items()}  # fmt: skip
        made["_base"] = GraphQLClient(url)
        until(lambda: all(w["status"] == "HEALTHY"
                          for w in made["admin"].data(WORKERS)["workers"]))  # fmt: skip
        yield made
        for client in made.values():
            client.close()


def test_capabilities_are_shown_to_admins_only(users: dict[str, GraphQLClient]) -> None:
    mine = {w["url"]: w for w in users["admin"].data(WORKERS)["workers"]}
    assert all(w["capabilities"]["nodeCount"] > 10 for w in mine.values())
    lacking = [w for w in mine.values() if "KSampler" not in w["capabilities"]["nodes"]]
    assert len(lacking) == 1
    assert all(w["capabilities"] is None for w in users["alice"].data(WORKERS)["workers"])


def test_drain_blocks_new_jobs_then_drained_then_undrain(
    users: dict[str, GraphQLClient], fleet: tuple[str, str]
) -> None:
    alice, admin = users["alice"], users["admin"]
    _lacking, full = fleet
    httpx.post(f"{full}/emulator/faults", json={"action": "stall", "class_type": "KSampler"})
    first = alice.data(SUBMIT)["submitJob"]["job"]["id"]
    until(lambda: alice.data(JOB, {"id": first})["job"]["status"] == "PROCESSING")
    assert alice.data(JOB, {"id": first})["job"]["comfyUrl"] == full

    assert alice.data(DRAIN, {"u": full})["drainWorker"]["userErrors"] == [{"code": "FORBIDDEN"}]
    unknown = admin.data(DRAIN, {"u": "http://nowhere:1"})["drainWorker"]
    assert unknown["userErrors"] == [{"code": "NOT_FOUND"}]
    drained = admin.data(DRAIN, {"u": full})["drainWorker"]
    assert drained["userErrors"] == [] and drained["worker"]["status"] == "DRAINING"

    second = alice.data(SUBMIT)["submitJob"]["job"]["id"]
    job = until(lambda: (j := alice.data(JOB, {"id": second})["job"])["blockedReason"] and j)
    assert job["status"] == "PENDING"
    assert job["blockedReason"] == "no healthy worker has node KSampler"
    metrics = users["_base"].http.get("/metrics").text
    assert 'comfygraph_jobs_blocked{reason="no healthy worker has node KSampler"} 1.0' in metrics

    httpx.post(f"{full}/emulator/faults", json={"action": "release"})
    until(lambda: alice.data(JOB, {"id": first})["job"]["status"] == "COMPLETED")
    # DRAINED once nothing runs there (the world's pending jobs may have gone there too)
    until(lambda: {w["url"]: w["status"] for w in admin.data(WORKERS)["workers"]}[full]
          == "DRAINED")  # fmt: skip
    assert alice.data(JOB, {"id": second})["job"]["status"] == "PENDING"

    assert admin.data(UNDRAIN, {"u": full})["undrainWorker"]["worker"]["status"] == "HEALTHY"
    done = until(lambda: (j := alice.data(JOB, {"id": second})["job"])["status"] == "COMPLETED"
                 and j)  # fmt: skip
    assert done["comfyUrl"] == full and done["blockedReason"] is None


BATCH = """mutation($n: Int) { submitJob(input: {workflowName: "product-image", count: $n,
  parameters: {prompt: "a shoe", seed: 7}}) { batchId userErrors { code field }
  jobs { ... on GenerationJob { id parameters batchId } } } }"""
GET_BATCH = "query($id: ID!) { batch(id: $id) { id total pending processing cancelled } }"
FEED = """query($b: ID) { jobs(first: 50, filter: {batchId: $b}) {
  edges { node { ... on GenerationJob { id } } } } }"""
CANCEL = """mutation($id: ID!) { cancelBatch(id: $id) { cancelledCount userErrors { code }
  batch { total cancelled } } }"""


def test_a_batch_has_distinct_seeds_one_id_a_feed_filter_and_cancels_whole(
    users: dict[str, GraphQLClient], fleet: tuple[str, str]
) -> None:
    alice, bob = users["alice"], users["bob"]
    for n in (0, 101):
        refused = alice.data(BATCH, {"n": n})["submitJob"]
        assert refused["userErrors"] == [{"code": "INVALID_COUNT", "field": ["count"]}]
        assert refused["jobs"] == []
    _lacking, full = fleet
    httpx.post(f"{full}/emulator/faults", json={"action": "stall", "class_type": "KSampler"})
    made = alice.data(BATCH, {"n": 3})["submitJob"]
    batch_id, jobs = made["batchId"], made["jobs"]
    assert made["userErrors"] == [] and len(jobs) == 3
    assert [j["parameters"]["seed"] for j in jobs] == [7, 8, 9]
    assert {j["batchId"] for j in jobs} == {batch_id}
    feed = alice.data(FEED, {"b": batch_id})["jobs"]["edges"]
    assert sorted(e["node"]["id"] for e in feed) == sorted(j["id"] for j in jobs)
    assert alice.data(GET_BATCH, {"id": batch_id})["batch"]["total"] == 3
    assert bob.data(GET_BATCH, {"id": batch_id})["batch"] is None  # not bob's
    assert bob.data(CANCEL, {"id": batch_id})["cancelBatch"]["userErrors"] == [
        {"code": "NOT_FOUND"}
    ]
    until(lambda: alice.data(GET_BATCH, {"id": batch_id})["batch"]["processing"] >= 1)
    cancelled = alice.data(CANCEL, {"id": batch_id})["cancelBatch"]
    assert cancelled["cancelledCount"] == 3 and cancelled["batch"] == {"total": 3, "cancelled": 3}
    httpx.post(f"{full}/emulator/faults", json={"action": "release"})
