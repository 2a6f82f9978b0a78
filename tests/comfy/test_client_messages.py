"""Parsing of ComfyUI wire messages: every recorded stream, played over a real socket."""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any, cast

import pytest

from comfygraph.comfy.client import ComfyClient, Lagged, Reconnected
from comfygraph.comfy.errors import ProtocolError
from comfygraph.comfy.messages import (
    HistoryEntry,
    PreviewImage,
    ProgressText,
    UnknownBinary,
    UnknownMessage,
    WsMessage,
    encode_binary,
    history_outcome,
    is_json_message,
    iter_outputs,
    message_prompt_id,
    output_files,
    parse_queue,
    parse_ws_message,
)
from tests.comfy.replay import TRACES, Payload, load_trace, serve_replay

PROBE = json.loads((TRACES.parent / "comfyui-0.3.64-probe.json").read_text())

# Every recorded socket that received messages: (trace, socket name).
STREAMS = [
    (path.name[:3].rstrip("_"), socket)
    for path in sorted(TRACES.glob("*.jsonl"))
    for socket, script in load_trace(path.name[:3].rstrip("_")).scripts.items()
    if script
]


def kind_of(item: Payload | WsMessage) -> str:
    if isinstance(item, bytes):
        return f"binary:{struct.unpack_from('>I', item)[0]}"
    if isinstance(item, PreviewImage | ProgressText | UnknownBinary):
        return f"binary:{item.event_type}"
    if isinstance(item, UnknownMessage):
        return f"unknown:{item.type}"
    return str(item["type"])


async def collect(stream: Any, count: int) -> list[WsMessage]:
    received: list[WsMessage] = []
    async with asyncio.timeout(5):
        async for item in stream:
            assert not isinstance(item, Reconnected | Lagged)
            received.append(item)
            if len(received) == count:
                return received
    raise AssertionError("stream ended early")


@pytest.mark.parametrize(("trace_name", "socket"), STREAMS)
async def test_recorded_stream_parses_in_order(trace_name: str, socket: str) -> None:
    trace = load_trace(trace_name)
    recorded = trace.messages(socket)
    with serve_replay(trace, sockets=[socket], free_run=True) as (url, replay):
        async with ComfyClient(url) as client, client.events() as stream:
            received = await collect(stream, len(recorded))
    assert [kind_of(m) for m in received] == [kind_of(m) for m in recorded]
    assert not [m for m in received if isinstance(m, UnknownMessage | UnknownBinary)]
    for got, sent in zip(received, recorded, strict=True):
        if is_json_message(got):
            assert isinstance(sent, dict)
            assert got["data"] == replay._out(sent["data"])
    # The client's only frame is the feature_flags negotiation ComfyUI expects first.
    assert replay.client_frames == [
        json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}})
    ]


async def test_progress_text_frame_from_trace_09() -> None:
    trace = load_trace("09")
    with serve_replay(trace, free_run=True) as (url, _):
        async with ComfyClient(url) as client, client.events() as stream:
            received = await collect(stream, len(trace.messages()))
    texts = [m for m in received if isinstance(m, ProgressText)]
    assert texts == [ProgressText("2", "width: 48, height: 32\n batch size: 2")]
    progress = [m["data"] for m in received if is_json_message(m) and m["type"] == "progress"]
    assert [(p["value"], p["max"], p["node"]) for p in progress] == [
        (k, 9, "3") for k in range(1, 10)
    ]


def test_reconnect_executing_variant_has_no_prompt_id() -> None:
    second = load_trace("11").messages("second")
    message = parse_ws_message(json.dumps(second[1]))
    assert is_json_message(message) and message["type"] == "executing"
    assert message["data"] == {"node": "11"}
    assert message_prompt_id(message) is None


@pytest.mark.parametrize("run", ["progress_legacy", "progress_meta"])
def test_preview_frames_rebuilt_from_the_probe(run: str) -> None:
    frames = [entry[2] for entry in PROBE[run]["ws"] if entry[1] == "binary"]
    previews = [f for f in frames if f["event"] in (1, 4)]
    assert previews
    for frame in previews:
        jpeg = bytes.fromhex(frame["magic"]) + bytes(frame["len"] - 12)
        if frame["event"] == 1:
            raw = struct.pack(">II", 1, frame["image_type"]) + jpeg
        else:
            meta = json.dumps(frame["metadata"]).encode()
            raw = struct.pack(">II", 4, len(meta)) + meta + jpeg
        parsed = parse_ws_message(raw)
        assert isinstance(parsed, PreviewImage)
        assert (parsed.event_type, parsed.image_format, parsed.mime_type) == (
            frame["event"],
            "jpeg",
            "image/jpeg",
        )
        assert parsed.data == jpeg
        if frame["event"] == 4:
            assert parsed.prompt_id == frame["metadata"]["prompt_id"]
            assert parsed.node_id == "2"
            assert message_prompt_id(parsed) == frame["metadata"]["prompt_id"]
        else:
            assert parsed.prompt_id is None
        assert encode_binary(parsed) == raw
    texts = [f for f in frames if f["event"] == 3]
    for frame in texts:
        raw = encode_binary(ProgressText(frame["node_id"], frame["text"]))
        assert len(raw) == frame["len"]
        assert parse_ws_message(raw) == ProgressText(frame["node_id"], frame["text"])


def test_unknown_types_are_kept_not_raised() -> None:
    message = parse_ws_message('{"type": "logs", "data": {"entries": [], "size": {}}}')
    assert message == UnknownMessage("logs", {"entries": [], "size": {}})
    assert parse_ws_message(struct.pack(">I", 99) + b"xyz") == UnknownBinary(99, b"xyz")
    png = parse_ws_message(struct.pack(">II", 1, 2) + b"\x89PNG")
    assert isinstance(png, PreviewImage) and png.image_format == "png"


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[1, 2]",
        '{"data": {}}',
        '{"type": "executing"}',
        '{"type": "execution_start", "data": {"timestamp": 1}}',
        '{"type": "status", "data": {"status": {}}}',
        b"\x00\x00",
        struct.pack(">II", 3, 10) + b"ab",
        struct.pack(">II", 4, 50) + b"{}",
    ],
)
def test_malformed_frames_raise_protocol_error(raw: str | bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_ws_message(raw)


def test_every_output_kind_is_reported() -> None:
    outputs = {
        "3": {"images": [{"filename": "a.png", "subfolder": "", "type": "output"}]},
        "4": {
            "images": [{"filename": "v.webm", "subfolder": "x", "type": "output"}],
            "animated": [True],
        },
        "5": {
            "gifs": [
                {
                    "filename": "g.mp4",
                    "subfolder": "",
                    "type": "output",
                    "format": "video/h264-mp4",
                    "fullpath": "/srv/g.mp4",
                }
            ]
        },
        "6": {"audio": [{"filename": "s.flac", "subfolder": "audio", "type": "temp"}]},
        "7": {"text": ["48"]},
        "8": {
            "meshes": [{"filename": "m.glb", "subfolder": "3d", "type": "output"}],
            "result": ["m.glb"],
        },
    }
    found = iter_outputs(outputs)
    files = {(f.node_id, f.kind, f.filename) for f in output_files(outputs)}
    assert files == {
        ("3", "images", "a.png"),
        ("4", "images", "v.webm"),
        ("5", "gifs", "g.mp4"),
        ("6", "audio", "s.flac"),
        ("8", "meshes", "m.glb"),
    }
    video = next(f for f in output_files(outputs) if f.node_id == "4")
    assert video.animated and video.subfolder == "x"
    gif = next(f for f in output_files(outputs) if f.node_id == "5")
    assert gif.extra == {"format": "video/h264-mp4"}  # never the worker-local fullpath
    values = {(v.node_id, v.kind, v.value) for v in found if not hasattr(v, "filename")}
    assert values == {("7", "text", "48"), ("8", "result", "m.glb")}


def recorded_history(trace_name: str, index: int = 0) -> HistoryEntry:
    records = [
        r
        for r in load_trace(trace_name).http
        if r.path.startswith("/history/") and r.response["json"]
    ]
    (entry,) = records[index].response["json"].values()
    return cast(HistoryEntry, entry)


def test_history_outcomes() -> None:
    assert history_outcome(recorded_history("01"))[0] == "success"
    outcome, data = history_outcome(recorded_history("05"))
    assert outcome == "error" and data["node_type"] == "Canny"
    outcome, data = history_outcome(recorded_history("06a"))
    assert outcome == "interrupted" and data["node_id"] == "12"
    # An error keeps the outputs of the nodes that ran before it.
    assert [f.filename for f in output_files(recorded_history("05")["outputs"])] == [
        "trace_err_branch_00001_.png"
    ]
    probe = next(iter(PROBE["runtime_error"]["history"].values()))
    assert history_outcome(probe)[1]["exception_type"] == "IndexError"


def test_queue_is_sorted_into_execution_order() -> None:
    # ComfyUI sends queue_pending in heap order, e.g. -26, 1.5, 25, 24 (PROTOCOL 1.3).
    pending = [[-26, "a", {}, {}, ["3"]], [1.5, "b", {}, {}, ["3"]], [25, "d", {}, {}, []]]
    pending.append([24, "c", {}, {}, ["3"]])
    queue = parse_queue({"queue_running": [[22, "r", {}, {}, ["3"]]], "queue_pending": pending})
    assert [item.prompt_id for item in queue.pending] == ["a", "b", "c", "d"]
    assert queue.position("a") == 0 and queue.position("d") == 3 and queue.position("r") is None
    assert queue.is_running("r") and "d" in queue and "x" not in queue
    with pytest.raises(ProtocolError):
        parse_queue({"queue_running": [["no-id"]], "queue_pending": []})
