"""Fidelity: replay each recorded ComfyUI 0.8.0 trace against the emulator.

Every HTTP request of a trace is sent again (same method, path, query, body, uploads) and
its response must match: status, media type and, for JSON, the shape (keys and value
types, recursively; prompt ids used as keys are normalised). Every websocket opened in
the trace is opened again and must receive the same frames: per prompt, the same
message types in the same order with the same data shapes; status messages as a
multiset (how they interleave with other prompts' messages depends on timing).

Before each action the replay waits until each socket has received at least as many
frames as it had in the trace at that moment; this is the synchronisation (no sleeps).
Where the trace depends on wall-clock timing that cannot be reproduced (a request sent
while a 1 s node was running), the emulator's stall switch holds that node instead;
the hooks below say where and why.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.comfy.conftest import Emulator, Message, Recorder, png_bytes

TRACES = Path(__file__).resolve().parents[1] / "data" / "comfy" / "traces" / "comfyui-0.8.0"
TRACE_HOST = "http://127.0.0.1:8188"

Hook = Callable[["Replay"], Awaitable[None]]


@dataclass
class Replay:
    emulator: Emulator
    records: list[dict[str, Any]]
    hooks: dict[str, Hook]
    uploads: list[bytes]
    sockets: dict[str, Recorder] = field(default_factory=dict)
    responses: list[tuple[dict[str, Any], Any]] = field(default_factory=list)
    replay_ids: list[str] = field(default_factory=list)
    id_map: dict[str, str] = field(default_factory=dict)  # trace prompt_id -> ours

    def translate(self, value: Any) -> Any:
        text = json.dumps(value)
        for trace_id, ours in self.id_map.items():
            text = text.replace(trace_id, ours)
        return json.loads(text)

    def trace_counts_before(self, moment: float) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for record in self.records:
            if record["kind"] == "ws_recv" and record["t"] < moment:
                counts[record["ws"]] += 1
        return counts

    async def barrier(self, moment: float) -> None:
        for name, count in self.trace_counts_before(moment).items():
            if name in self.sockets:
                await self.sockets[name].wait_count(count)

    async def run(self) -> None:
        actions = sorted(
            (r.get("t_sent", r["t"]), n, r)
            for n, r in enumerate(self.records)
            if r["kind"] != "ws_recv"
        )
        http_index = 0
        for moment, _, record in actions:
            kind = record["kind"]
            key = f"{kind} {record.get('ws', http_index)}"
            await self.barrier(moment)
            if f"before {key}" in self.hooks:
                await self.hooks[f"before {key}"](self)
            if kind == "ws_open":
                client_id = record["url"].partition("clientId=")[2] or None
                self.sockets[record["ws"]] = await self.emulator.connect(client_id)
            elif kind == "ws_send":
                await self.sockets[record["ws"]].connection.send(json.dumps(record["data"]))
            elif kind == "ws_close":
                await self.flush(record["ws"])
            elif kind == "http":
                await self.send(record)
                http_index += 1
            if f"after {key}" in self.hooks:
                await self.hooks[f"after {key}"](self)

    async def flush(self, name: str) -> None:
        """Before closing: everything the trace's socket received must have arrived."""
        total = sum(1 for r in self.records if r["kind"] == "ws_recv" and r["ws"] == name)
        await self.sockets[name].wait_count(total)

    async def send(self, record: dict[str, Any]) -> None:
        request = record["request"]
        headers = {
            k: v.replace(TRACE_HOST, self.emulator.url)
            for k, v in request.get("headers", {}).items()
        }
        path = self.translate(request["path"])
        kwargs: dict[str, Any] = {
            "params": self.translate(request.get("params")),
            "headers": headers,
        }
        if "json" in request:
            kwargs["json"] = self.translate(rewrite(request["json"]))
        elif "raw_body" in request:
            kwargs["content"] = request["raw_body"].encode()
        if "form" in request or "files" in request:
            kwargs["data"] = request.get("form", {})
            files = request.get("files", {})
            kwargs["files"] = {
                part: (meta["filename"], self.uploads.pop(0), meta["content_type"])
                for part, meta in files.items()
            } or None
        response = await self.emulator.http.request(request["method"], path, **kwargs)
        self.responses.append((record, response))
        if request["path"] in ("/prompt", "/api/prompt") and request["method"] == "POST":
            if response.status_code == 200:
                self.replay_ids.append(response.json()["prompt_id"])
                self.id_map[record["response"]["json"]["prompt_id"]] = self.replay_ids[-1]


def rewrite(body: Any) -> Any:
    """The one input that cannot be replayed verbatim: the trace's locally made upscale
    model is not in the emulator's catalogue, so an installed one is used instead."""
    text = json.dumps(body).replace("tiny_compact_random_x2.safetensors", "RealESRGAN_x2.pth")
    return json.loads(text)


# ------------------------------------------------------------------ comparison


UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def shape(value: Any, ids: set[str]) -> Any:
    if isinstance(value, dict):
        return {
            ("<prompt_id>" if k in ids or UUID.match(k) else k): shape(v, ids)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return ["list", sorted({json.dumps(shape(v, ids), sort_keys=True) for v in value})]
    return type(value).__name__


def media_type(headers: dict[str, str]) -> str | None:
    value = headers.get("content-type")
    return value.split(";")[0].strip() if value else None


def check_http(
    record: dict[str, Any], response: Any, trace_ids: set[str], replay_ids: set[str]
) -> None:
    expected = record["response"]
    request = record["request"]
    where = f"{request['method']} {request['path']} {request.get('params')}"
    assert response.status_code == expected["status"], (where, response.text)
    assert media_type(dict(response.headers)) == media_type(expected["headers"]), where
    if "json" in expected:
        assert shape(response.json(), replay_ids) == shape(expected["json"], trace_ids), where
    elif expected.get("binary"):
        assert response.content[:8].hex() == expected["first_8_bytes_hex"], where
    else:
        assert response.text == expected.get("text", ""), where


def ws_summary(messages: Sequence[dict[str, Any] | Message], ids: list[str]) -> dict[str, Any]:
    """Per prompt (numbered in submission order) the (type, shape) sequence; frames with
    no prompt_id belong to the prompt last seen on that socket; statuses as a multiset."""
    ordinal = {pid: f"prompt{ids.index(pid)}" for pid in ids}
    groups: dict[str, list[Any]] = defaultdict(list)
    statuses: list[str] = []
    current = "no prompt"
    for item in messages:
        message = item if isinstance(item, Message) else trace_message(item)
        if message.type == "status":
            statuses.append(json.dumps(shape(message.data, set()), sort_keys=True))
            continue
        if message.prompt_id is not None:
            current = ordinal.get(message.prompt_id, "unknown prompt")
        data = None if message.type.startswith("binary") else message.data
        groups[current].append((message.type, shape(data, set(ids))))
    return {"statuses": sorted(statuses), "groups": dict(groups)}


def trace_message(record: dict[str, Any]) -> Message:
    if record.get("binary"):
        return Message(f"binary:{record['event_type']}", record.get("decoded"))
    return Message(record["data"]["type"], record["data"]["data"])


def trace_prompt_ids(records: list[dict[str, Any]]) -> list[str]:
    ids = []
    for record in records:
        if record["kind"] == "http" and record["request"]["method"] == "POST":
            if record["request"]["path"] == "/prompt" and record["response"]["status"] == 200:
                ids.append(record["response"]["json"]["prompt_id"])
    return ids


def unique(ids: list[str]) -> list[str]:
    return list(dict.fromkeys(ids))


# ------------------------------------------------------------------ per-trace hooks


async def run_alone(replay: Replay, prompt: dict[str, Any]) -> None:
    """Run a prompt on a private socket before the replay (the trace's server had run
    the previous cases already, and some responses depend on that)."""
    socket = await replay.emulator.connect("setup")
    await replay.emulator.run(prompt, socket, "setup")
    await socket.close()


def trace_prompt(name: str, index: int = 0) -> dict[str, Any]:
    records = load(name)
    posts = [r for r in records if r["kind"] == "http" and r["request"]["path"] == "/prompt"]
    prompt: dict[str, Any] = posts[index]["request"]["json"]["prompt"]
    return prompt


async def after_case_01(replay: Replay) -> None:
    await run_alone(replay, trace_prompt("01"))  # case 02 re-submits case 01's prompt


async def after_case_07(replay: Replay) -> None:
    # /history?max_items=1 in case 08 returns case 07's last prompt: recreate it.
    await replay.emulator.upload("trace_upload.png", png_bytes(), subfolder="tracesub")
    await run_alone(replay, trace_prompt("07", 1))


def stall(node_id: str) -> Hook:
    """Hold `node_id` (a ~1 s ImageBlur on the real server) until an interrupt or release."""

    async def hook(replay: Replay) -> None:
        await replay.emulator.fault(action="stall", node_id=node_id)

    return hook


async def release_after_reconnect(replay: Replay) -> None:
    # The real node 11 finished on its own about a second later; here it is released
    # once the reconnecting socket has its greeting and the executing notice.
    await replay.sockets["second"].wait_count(2)
    await replay.emulator.fault(action="release")


def uploads_07() -> list[bytes]:
    first, other = png_bytes(color=(1, 2, 3)), png_bytes(color=(9, 9, 9))
    return [first, first, other, first]  # same bytes, same, different, into a subfolder


CASES: dict[str, tuple[dict[str, Hook], Callable[[], list[bytes]]]] = {
    "00": ({}, list),
    "01": ({}, list),
    "02": ({"before ws_open main": after_case_01}, list),
    "03": ({}, list),
    "04": ({}, list),
    "05": ({}, list),
    "06a": ({"before http 0": stall("11")}, list),
    "06b": ({"before http 0": stall("11")}, list),
    "07": ({}, uploads_07),
    "08": ({"before ws_open main": after_case_07, "before http 10": stall("10")}, list),
    "09": ({}, list),
    "10": ({}, list),
    "11": ({"before http 0": stall("11"), "after ws_open second": release_after_reconnect}, list),
    "12": ({}, list),
    "13": ({}, list),
}


def load(prefix: str) -> list[dict[str, Any]]:
    (path,) = TRACES.glob(f"{prefix}_*.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_every_trace_has_a_case() -> None:
    assert sorted(p.name.split("_")[0] for p in TRACES.glob("*.jsonl")) == sorted(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
async def test_trace(emulator: Emulator, case: str) -> None:
    hooks, uploads = CASES[case]
    records = load(case)
    replay = Replay(emulator, records, hooks, uploads())
    await replay.run()
    for name in replay.sockets:
        await replay.flush(name)

    trace_ids, replay_ids = trace_prompt_ids(records), replay.replay_ids
    assert len(replay_ids) == len(trace_ids)
    for record, response in replay.responses:
        check_http(record, response, set(trace_ids), set(replay_ids))
    for name, socket in replay.sockets.items():
        expected = [r for r in records if r["kind"] == "ws_recv" and r["ws"] == name]
        got = socket.messages
        assert len(got) == len(expected), (name, socket.types())
        assert ws_summary(got, unique(replay_ids)) == ws_summary(expected, unique(trace_ids)), name
