"""Query.workflows (the loaded templates) and Query.workers (the worker pool)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from comfygraph.server.app import create_app
from comfygraph.server.settings import Settings, WorkerSpec
from tests.graphql.client import GraphQLClient
from tests.servers import free_port, serve_in_thread

WORKFLOWS = """query($t: OutputType) { workflows(outputType: $t) {
  name outputType description parameters { name type required default min max choices } } }"""


@pytest.fixture(scope="module")
def client(settings: Settings, dsn: str) -> Iterator[GraphQLClient]:
    # A worker nobody listens on: listed, and not healthy.
    dead = f"http://127.0.0.1:{free_port()}"
    with_worker = settings.model_copy(update={"comfy_workers": (WorkerSpec(dead, 1.5),)})
    with serve_in_thread(create_app(with_worker, dsn=dsn)) as url:
        c = GraphQLClient(url)
        yield c
        c.close()


def test_workflows_are_the_loaded_templates(client: GraphQLClient) -> None:
    every = client.data(WORKFLOWS)["workflows"]
    names = [w["name"] for w in every]
    assert names == sorted(names)
    assert {"img2img", "lipsync-one", "wan-i2v", "character-caption"} <= set(names)
    kinds = {w["name"]: w["outputType"] for w in every}
    assert kinds["img2img"] == "IMAGE" and kinds["wan-i2v"] == "VIDEO"
    assert kinds["character-caption"] == "TEXT"
    params = [p for w in every for p in w["parameters"]]
    assert params and all(p["type"] in {"STRING", "INT", "FLOAT", "BOOLEAN", "SEED", "IMAGE",
                                        "AUDIO", "VIDEO"} for p in params)  # fmt: skip
    videos = client.data(WORKFLOWS, {"t": "VIDEO"})["workflows"]
    assert videos and {w["outputType"] for w in videos} == {"VIDEO"}


def test_workers_are_the_configured_pool(client: GraphQLClient) -> None:
    workers = client.data("{ workers { url healthy draining runningJobs queueRemaining } }")
    [worker] = workers["workers"]
    assert worker["url"].startswith("http://127.0.0.1:")
    assert worker["healthy"] is False and worker["runningJobs"] == 0
