"""ComfyClient's HTTP routes against recorded ComfyUI 0.8.0 answers, over real sockets."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from comfygraph.comfy.client import ComfyClient
from comfygraph.comfy.errors import OutputMissing, PromptRejected, ProtocolError, WorkerUnavailable
from tests.comfy.replay import HttpRecord, load_trace, serve_replay
from tests.servers import free_port

PNG_MAGIC = bytes.fromhex("89504e470d0a1a0a")


def rejections() -> list[tuple[str, HttpRecord]]:
    """Every recorded POST /prompt that ComfyUI refused with 400 and a dict graph."""
    found = []
    for name in ("03", "04"):
        for record in load_trace(name).posts:
            body = record.request.get("json")
            if (
                record.path == "/prompt"
                and record.response["status"] == 400
                and isinstance(body, dict)
                and isinstance(body.get("prompt"), dict)
            ):
                found.append((name, record))
    return found


async def test_submit_sends_client_id_and_a_fresh_uuid() -> None:
    trace = load_trace("01")
    with serve_replay(trace) as (url, replay):
        async with ComfyClient(url) as client:
            result = await client.submit(trace.prompts()[0])
    assert uuid.UUID(result.prompt_id).version == 4
    assert str(uuid.UUID(result.prompt_id)) == result.prompt_id  # canonical form
    assert (result.number, result.node_errors) == (0, {})
    (request,) = replay.requests
    assert request.body == {
        "prompt": trace.prompts()[0],
        "client_id": client.client_id,
        "prompt_id": result.prompt_id,
    }


async def test_submit_honours_a_client_supplied_prompt_id() -> None:
    trace = load_trace("13")
    with serve_replay(trace) as (url, replay):
        async with ComfyClient(url) as client:
            result = await client.submit(
                trace.prompts()[0], prompt_id="my-own-id", front=True, extra_data={"k": 1}
            )
    assert result.prompt_id == "my-own-id"
    assert replay.requests[0].body["prompt_id"] == "my-own-id"
    assert replay.requests[0].body["front"] is True
    assert replay.requests[0].body["extra_data"] == {"k": 1}


@pytest.mark.parametrize(
    ("trace_name", "record"),
    rejections(),
    ids=lambda v: v if isinstance(v, str) else str(v.index),
)
async def test_validation_failures_raise_prompt_rejected(
    trace_name: str, record: HttpRecord
) -> None:
    expected = record.response["json"]
    with serve_replay(trace_name) as (url, _):
        async with ComfyClient(url) as client:
            with pytest.raises(PromptRejected) as info:
                await client.submit(record.request["json"]["prompt"])
    rejected = info.value
    assert rejected.status_code == 400
    assert rejected.error == expected["error"]
    assert rejected.error_type == expected["error"]["type"]
    assert rejected.node_errors == expected["node_errors"]
    for node_id, node_error in rejected.node_errors.items():
        assert node_id in str(rejected)
        assert node_error["errors"][0]["type"] in str(rejected)


async def test_unknown_class_type_rejects_with_empty_node_errors() -> None:
    trace = load_trace("03")
    with serve_replay(trace) as (url, _):
        async with ComfyClient(url) as client:
            with pytest.raises(PromptRejected) as info:
                await client.run_prompt(trace.prompts()[0], timeout=5)
    assert info.value.error_type == "invalid_prompt"
    assert info.value.node_errors == {}
    assert "ImageInvertDoesNotExist" in str(info.value)


async def test_partially_valid_graph_is_accepted_with_node_errors() -> None:
    trace = load_trace("04")
    record = next(
        r for r in trace.posts if r.response["status"] == 200 and r.response["json"]["node_errors"]
    )
    with serve_replay(trace) as (url, _):
        async with ComfyClient(url) as client:
            result = await client.submit(record.request["json"]["prompt"])
    assert result.node_errors["5"]["errors"][0]["type"] == "value_smaller_than_min"
    assert result.node_errors["5"]["dependent_outputs"] == ["6"]


async def test_server_error_is_worker_unavailable() -> None:
    # A list as "prompt" makes ComfyUI 0.8.0 answer 500 "Server got itself in trouble".
    with serve_replay("04") as (url, _):
        async with ComfyClient(url) as client:
            with pytest.raises(WorkerUnavailable) as info:
                await client.submit([1, 2, 3])  # type: ignore[arg-type]
    assert info.value.status_code == 500


async def test_foreign_origin_refusal_is_a_protocol_error() -> None:
    trace = load_trace("12")
    with serve_replay(trace) as (url, _):
        async with ComfyClient(url) as client:
            with pytest.raises(ProtocolError) as info:
                await client.system_stats()
            assert info.value.status_code == 403
            with pytest.raises(ProtocolError):
                await client.submit(trace.prompts()[0])
            stats = await client.system_stats()
    assert stats["system"]["comfyui_version"] == "0.8.0"


async def test_upload_uses_the_name_comfyui_stored() -> None:
    data = PNG_MAGIC + bytes(74)
    with serve_replay("07") as (url, replay):
        async with ComfyClient(url) as client:
            first = await client.upload_image(data, "trace_upload.png", overwrite=True)
            same = await client.upload_image(data, "trace_upload.png")
            renamed = await client.upload_image(data[::-1], "trace_upload.png")
            nested = await client.upload_image(
                data, "trace_upload.png", subfolder="tracesub", overwrite=True
            )
            stored = await client.view("trace_upload.png", type="input")
    assert (first, same, renamed, nested) == (
        "trace_upload.png",
        "trace_upload.png",
        "trace_upload (1).png",
        "tracesub/trace_upload.png",
    )
    assert replay.requests[0].form == {"type": "input", "overwrite": "true"}
    assert replay.requests[3].form == {
        "type": "input",
        "subfolder": "tracesub",
        "overwrite": "true",
    }
    assert stored.startswith(PNG_MAGIC) and len(stored) == 82
    assert not replay.unmatched


async def test_view_and_download(tmp_path: Path) -> None:
    with serve_replay("01") as (url, replay):
        async with ComfyClient(url) as client:
            image = await client.view("trace_00001_.png")
            size = await client.download("trace_00001_.png", tmp_path / "out.png")
            with pytest.raises(OutputMissing):
                await client.view("no_such_file.png")
            with pytest.raises(OutputMissing):
                await client.download("no_such_file.png", tmp_path / "missing.png")
            assert client.view_url("a b.png", "sub", "temp") == (
                f"{url}/view?filename=a+b.png&subfolder=sub&type=temp"
            )
            with pytest.raises(ValueError):
                await client.view("x.png", type="elsewhere")
    assert image.startswith(PNG_MAGIC) and len(image) == 443
    assert size == 443 and (tmp_path / "out.png").read_bytes() == image
    assert not (tmp_path / "out.png.part").exists() and not (tmp_path / "missing.png").exists()
    assert replay.requests[0].params == {
        "filename": "trace_00001_.png",
        "subfolder": "",
        "type": "output",
    }


async def test_information_endpoints() -> None:
    with serve_replay("08") as (url, _):
        async with ComfyClient(url) as client:
            queue = await client.queue()
            remaining = await client.queue_remaining()
            stats = await client.system_stats()
            info = await client.object_info("EmptyImage")
            unknown = await client.object_info("NoSuchNode")
    assert (queue.running, queue.pending, remaining) == ([], [], 0)
    assert stats["system"]["comfyui_version"] == "0.8.0"
    assert stats["devices"][0]["type"] == "cpu"
    assert info["EmptyImage"]["input"]["required"]["width"][0] == "INT"
    assert info["EmptyImage"]["output"] == ["IMAGE"]
    assert unknown == {}


def test_base_url_must_be_http() -> None:
    with pytest.raises(ValueError):
        ComfyClient("gpu-3:8188")


async def test_closed_port_raises_worker_unavailable_quickly() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    async with ComfyClient(url, connect_timeout=2) as client:
        with pytest.raises(WorkerUnavailable):
            await client.system_stats()
        with pytest.raises(WorkerUnavailable):
            await client.submit({})
        with pytest.raises(WorkerUnavailable):
            async with client.events():
                pass
        with pytest.raises(WorkerUnavailable):
            await client.run_prompt({}, timeout=5)
    assert time.monotonic() - started < 2


@pytest.fixture
def mute_port() -> Iterator[int]:
    """A port whose listener accepts connections but never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


async def test_a_worker_that_never_answers_times_out(mute_port: int) -> None:
    started = time.monotonic()
    async with ComfyClient(
        f"http://127.0.0.1:{mute_port}", timeout=0.3, connect_timeout=0.3
    ) as client:
        with pytest.raises(WorkerUnavailable, match="timed out"):
            await client.history("x")
        with pytest.raises(WorkerUnavailable, match="timed out"):
            async with client.events():
                pass
    assert time.monotonic() - started < 3
