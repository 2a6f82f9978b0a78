"""Whole runs: run_prompt / watch against replayed ComfyUI 0.8.0 streams, with faults.

Each test gives the job a deadline and, where the point is that the websocket
(not polling) finished the job, a poll interval far beyond that deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import threading
from typing import Any

import pytest

from comfygraph.comfy.client import ComfyClient, JobEvent, Lagged, Reconnected, new_prompt_id
from comfygraph.comfy.errors import (
    ExecutionFailed,
    ExecutionInterrupted,
    JobTimeout,
    PromptNotFound,
    WorkerUnavailable,
)
from comfygraph.comfy.messages import (
    PreviewImage,
    ProgressText,
    history_outcome,
    is_json_message,
    message_prompt_id,
)
from tests.comfy.replay import Payload, always, executing, load_trace, serve_replay

FAST: dict[str, Any] = {"reconnect_delay": (0.01, 0.05), "poll_interval": 60.0}  # no polls


def kinds(events: list[JobEvent]) -> list[str]:
    out = []
    for event in events:
        if is_json_message(event):
            node = event["data"].get("node", "") if event["type"] == "executing" else ""
            out.append(f"{event['type']}{':' if node or node is None else ''}{node or ''}")
        else:
            out.append(type(event).__name__)
    return out


async def test_run_prompt_success_with_outputs() -> None:
    trace = load_trace("01")
    events: list[JobEvent] = []
    with serve_replay(trace) as (url, replay):
        async with ComfyClient(url, **FAST) as client:
            result = await client.run_prompt(trace.prompts()[0], timeout=5, on_event=events.append)
    assert [(f.node_id, f.kind, f.filename, f.type) for f in result.files] == [
        ("3", "images", "trace_00001_.png", "output")
    ]
    assert history_outcome(result.entry)[0] == "success"
    assert kinds(events)[0] == "execution_start" and kinds(events)[-1] == "executing:"
    assert all(message_prompt_id(e) == result.prompt_id for e in events if is_json_message(e))
    assert [(r.method, r.path) for r in replay.requests] == [
        ("POST", "/prompt"),
        ("GET", f"/history/{result.prompt_id}"),
    ]


async def test_cached_rerun_reports_the_old_files() -> None:
    trace = load_trace("02")
    first, second = trace.prompts()
    with serve_replay(trace) as (url, _):
        async with ComfyClient(url, **FAST) as client:
            events: list[JobEvent] = []
            cached = await client.run_prompt(first, timeout=5, on_event=events.append)
            changed = await client.run_prompt(second, timeout=5)
    # Everything cached: no "executing" for any node, yet "executed" for the output node.
    assert kinds(events) == [
        "execution_start",
        "execution_cached",
        "executed",
        "progress_state",
        "execution_success",
        "executing:",
    ]
    assert [f.filename for f in cached.files] == ["trace_00001_.png"]
    assert [f.filename for f in changed.files] == ["trace_again_00001_.png"]


async def test_events_that_beat_the_post_reply_are_not_lost() -> None:
    trace = load_trace("01")
    hold = threading.Event()
    prompt_id = new_prompt_id()
    with serve_replay(trace, race=True, hold_post=hold) as (url, _):
        async with ComfyClient(url, **FAST) as client, client.events() as stream:
            submit = asyncio.create_task(client.submit(trace.prompts()[0], prompt_id=prompt_id))
            async with asyncio.timeout(5):
                async for message in stream:  # the whole run arrives before the reply
                    if (
                        is_json_message(message)
                        and message["type"] == "executing"
                        and message["data"] == {"node": None, "prompt_id": prompt_id}
                    ):
                        break
            assert not submit.done()
            hold.set()
            await submit
            # Watching only now: the buffered events finish the job (no polling).
            async with client.watch(prompt_id, timeout=5) as job:
                seen = [event async for event in job]
                result = await job.wait()
    assert kinds(seen)[0] == "execution_start" and kinds(seen)[-1] == "executing:"
    assert [f.filename for f in result.files] == ["trace_00001_.png"]


async def test_run_prompt_under_the_race() -> None:
    trace = load_trace("01")
    with serve_replay(trace, race=True) as (url, _):
        async with ComfyClient(url, **FAST) as client:
            result = await client.run_prompt(trace.prompts()[0], timeout=5)
    assert [f.filename for f in result.files] == ["trace_00001_.png"]


async def test_reconnect_mid_run_catches_up_from_history() -> None:
    trace = load_trace("01")
    events: list[JobEvent] = []
    with serve_replay(trace, drop_after=executing("2")) as (url, replay):
        async with ComfyClient(url, **FAST) as client:
            result = await client.run_prompt(trace.prompts()[0], timeout=5, on_event=events.append)
    # The socket dropped after node 2; the rest of the run happened unseen.
    assert kinds(events)[-2:] == ["executing:2", "Reconnected"]
    assert [f.filename for f in result.files] == ["trace_00001_.png"]
    assert replay.connected_ids == [client.client_id, client.client_id]
    assert ("GET", f"/history/{result.prompt_id}") in [(r.method, r.path) for r in replay.requests]


async def test_reconnect_with_the_same_client_id_resumes_the_events() -> None:
    # Trace 11: a second socket with the same clientId gets "executing" (no
    # prompt_id) for the running node, then every later event of the prompt.
    trace = load_trace("11")
    resume = threading.Event()
    events: list[JobEvent] = []

    def variant(payload: Payload) -> bool:
        return isinstance(payload, dict) and payload["data"] == {"node": "11"}

    def on_event(event: JobEvent) -> None:
        events.append(event)
        if is_json_message(event) and event["data"] == {"node": "11"}:
            resume.set()  # seen while the run is still going: let it finish

    options: dict[str, Any] = {"drop_after": executing("11"), "pause_after": variant}
    with serve_replay(trace, sockets=["first", "second"], resume=resume, **options) as (url, _):
        async with ComfyClient(url, **FAST) as client:
            result = await client.run_prompt(trace.prompts()[0], timeout=5, on_event=on_event)
    names = kinds(events)
    after = names[names.index("Reconnected") + 1 :]
    assert after[0] == "executing:11"  # the prompt_id-less variant, attributed to our prompt
    assert "executing:12" in after and after[-1] == "executing:"
    assert [f.filename for f in result.files] == ["trace_reconnect_00001_.png"]


async def test_other_clients_messages_are_ignored() -> None:
    trace = load_trace("01")
    foreign: list[Payload] = [
        *load_trace("05").messages(),  # includes an execution_error of another prompt
        *load_trace("06a").messages(),  # an execution_interrupted of another prompt
        *load_trace("10").messages("B"),  # broadcasts of a prompt without client_id
    ]
    events: list[JobEvent] = []
    with serve_replay(trace, inject=[(always, m) for m in foreign]) as (url, _):
        async with ComfyClient(url, **FAST) as client:
            result = await client.run_prompt(trace.prompts()[0], timeout=5, on_event=events.append)
    assert [f.filename for f in result.files] == ["trace_00001_.png"]
    foreign_ids = {message_prompt_id(e) for e in events if is_json_message(e)} - {result.prompt_id}
    assert foreign_ids == set()


async def test_a_silent_websocket_is_caught_by_polling() -> None:
    trace = load_trace("01")
    events: list[JobEvent] = []
    with serve_replay(trace, mute_after=executing("1")) as (url, replay):
        async with ComfyClient(url, reconnect_delay=(0.01, 0.05), poll_interval=0.2) as client:
            result = await client.run_prompt(trace.prompts()[0], timeout=5, on_event=events.append)
    assert kinds(events)[-1] == "executing:1"  # nothing after that reached the client
    assert [f.filename for f in result.files] == ["trace_00001_.png"]
    assert ("GET", f"/history/{result.prompt_id}") in [(r.method, r.path) for r in replay.requests]


async def test_a_lost_prompt_raises_prompt_not_found() -> None:
    with serve_replay("01") as (url, _):
        async with ComfyClient(url, poll_interval=0.1) as client:
            async with client.watch(new_prompt_id(), timeout=5) as job:
                with pytest.raises(PromptNotFound):
                    await job.wait()


@pytest.mark.parametrize(
    ("index", "node_id", "node_type", "exception_type", "executed"),
    [
        (0, "4", "Canny", "kornia.core.exceptions.BaseError", ["2", "3", "1"]),
        (1, "30", "RegexReplace", "re.error", []),
    ],
)
async def test_execution_error_raises_execution_failed(
    index: int, node_id: str, node_type: str, exception_type: str, executed: list[str]
) -> None:
    trace = load_trace("05")
    with serve_replay(trace, free_run=False) as (url, _):
        async with ComfyClient(url, **FAST) as client:
            if index:  # the second prompt's events follow the first's POST
                with pytest.raises(ExecutionFailed):
                    await client.run_prompt(trace.prompts()[0], timeout=5)
            with pytest.raises(ExecutionFailed) as info:
                await client.run_prompt(trace.prompts()[index], timeout=5)
    failed = info.value
    assert (failed.node_id, failed.node_type, failed.exception_type) == (
        node_id,
        node_type,
        exception_type,
    )
    assert failed.executed == executed
    assert failed.exception_message and not failed.exception_message.endswith("\n")
    assert failed.traceback
    assert "tensor(" not in str(failed)  # current_inputs stay out of the message


async def test_execution_blocker_notice_is_not_fatal() -> None:
    # An ExecutionBlocker sends execution_error without a timestamp and the run goes on.
    trace = load_trace("01")
    prompt_id = new_prompt_id()
    notice = {
        "type": "execution_error",
        "data": {
            "prompt_id": prompt_id,
            "node_id": "2",
            "node_type": "ImageInvert",
            "executed": [],
            "exception_message": "blocked",
            "exception_type": "ExecutionBlocker",
            "traceback": [],
            "current_inputs": [],
            "current_outputs": [],
        },
    }
    with serve_replay(trace, inject=[(executing("2"), notice)]) as (url, _):
        async with ComfyClient(url, **FAST) as client:
            result = await client.run_prompt(trace.prompts()[0], prompt_id=prompt_id, timeout=5)
    assert [f.filename for f in result.files] == ["trace_00001_.png"]


async def test_interrupt_running_prompt() -> None:
    trace = load_trace("06a")
    with serve_replay(trace) as (url, _):
        async with ComfyClient(url, **FAST) as client:
            async with client.submit_and_watch(trace.prompts()[0], timeout=5) as job:
                async for event in job:
                    if is_json_message(event) and event["type"] == "executing":
                        if event["data"]["node"] == "11":
                            await client.interrupt()
                with pytest.raises(ExecutionInterrupted) as info:
                    await job.wait()
    interrupted = info.value
    # Noticed only between nodes: node 12 was announced, then interrupted.
    assert (interrupted.node_id, interrupted.node_type) == ("12", "ImageBlur")
    assert sorted(interrupted.executed) == ["1", "10", "11"]


async def test_queue_delete_and_targeted_interrupt() -> None:
    trace = load_trace("06b")
    graph_a, graph_b, graph_c = trace.prompts()
    with serve_replay(trace) as (url, replay):
        async with ComfyClient(url, **FAST) as client:
            async with client.submit_and_watch(graph_a, timeout=5) as job_a:
                b = await client.submit(graph_b)
                c = await client.submit(graph_c)
                queue = await client.queue()
                assert queue.is_running(job_a.prompt_id)
                assert [i.prompt_id for i in queue.pending] == [b.prompt_id, c.prompt_id]
                assert queue.position(c.prompt_id) == 1
                assert await client.queue_remaining() == 3
                await client.delete_from_queue([b.prompt_id])
                assert [i.prompt_id for i in (await client.queue()).pending] == [c.prompt_id]
                await client.interrupt(c.prompt_id)  # C is pending: a silent no-op
                async for event in job_a:
                    if is_json_message(event) and event["type"] == "executing":
                        if event["data"]["node"] == "11":
                            await client.interrupt(job_a.prompt_id)
                with pytest.raises(ExecutionInterrupted):
                    await job_a.wait()
            async with client.watch(c.prompt_id, timeout=5) as job_c:  # C ran meanwhile
                result_c = await job_c.wait()
            assert await client.history(b.prompt_id) is None
    assert [f.filename for f in result_c.files] == ["trace_C_00001_.png"]
    interrupts = [r.body for r in replay.requests if r.path == "/interrupt"]
    assert interrupts == [{"prompt_id": c.prompt_id}, {"prompt_id": job_a.prompt_id}]
    assert not replay.unmatched


async def test_job_timeout_cancels_the_prompt() -> None:
    trace = load_trace("06a")  # never finishes unless interrupted
    with serve_replay(trace) as (url, replay):
        async with ComfyClient(url, **FAST) as client:
            with pytest.raises(JobTimeout) as info:
                await client.run_prompt(trace.prompts()[0], timeout=0.5)
    assert info.value.timeout == 0.5
    deletes = [r.body for r in replay.requests if (r.method, r.path) == ("POST", "/queue")]
    assert deletes == [{"delete": [info.value.prompt_id]}]


async def test_progress_previews_and_text_reach_the_job() -> None:
    trace = load_trace("09")
    prompt_id = new_prompt_id()
    jpeg = bytes.fromhex("ffd8ffe0") + bytes(64)
    legacy = struct.pack(">II", 1, 1) + jpeg
    meta = json.dumps({"node_id": "3", "prompt_id": prompt_id, "image_type": "image/jpeg"}).encode()
    with_meta = struct.pack(">II", 4, len(meta)) + meta + jpeg
    inject: list[tuple[Any, Payload]] = [(executing("2"), legacy), (executing("3"), with_meta)]
    events: list[JobEvent] = []
    with serve_replay(trace, inject=inject) as (url, _):
        async with ComfyClient(url, **FAST) as client:
            result = await client.run_prompt(
                trace.prompts()[0], prompt_id=prompt_id, timeout=5, on_event=events.append
            )
    previews = [e for e in events if isinstance(e, PreviewImage)]
    assert [(p.event_type, p.image_format, p.data) for p in previews] == [
        (1, "jpeg", jpeg),
        (4, "jpeg", jpeg),
    ]
    assert previews[1].prompt_id == prompt_id
    assert [e for e in events if isinstance(e, ProgressText)] == [
        ProgressText("2", "width: 48, height: 32\n batch size: 2")
    ]
    assert [v.value for v in result.values] == ["48"]  # PreviewAny's text output


async def test_a_slow_consumer_gets_a_lagged_marker() -> None:
    trace = load_trace("01")
    with serve_replay(trace) as (url, _):
        async with ComfyClient(url, **FAST) as client, client.events(buffer=3) as stream:
            result = await client.run_prompt(trace.prompts()[0], timeout=5)
            async with asyncio.timeout(5):
                first = await anext(stream)
    assert first == Lagged(dropped=first.dropped) and first.dropped > 0  # type: ignore[union-attr]
    assert result.files


async def test_closing_the_client_ends_streams() -> None:
    with serve_replay("01") as (url, _):
        client = ComfyClient(url, **FAST)
        async with client.events() as stream:
            first = await anext(stream)
            await client.aclose()
            rest = [item async for item in stream]
    assert is_json_message(first) and first["type"] == "status"
    assert rest == []
    assert not any(isinstance(item, Reconnected) for item in rest)


async def test_the_raw_stream_marks_a_reconnect() -> None:
    trace = load_trace("01")
    with serve_replay(trace, free_run=True, drop_after=executing("2")) as (url, _):
        async with ComfyClient(url, **FAST) as client, client.events() as stream:
            seen: list[Any] = []
            async with asyncio.timeout(5):
                async for item in stream:
                    seen.append(item)
                    if isinstance(item, Reconnected):
                        break
            after = await anext(stream)
    assert is_json_message(seen[-2]) and seen[-2]["data"].get("node") == "2"
    assert seen[-1].attempts == 0 and seen[-1].downtime >= 0
    assert is_json_message(after) and after["data"].get("sid") == client.client_id


async def test_a_worker_that_dies_mid_run_is_unavailable() -> None:
    trace = load_trace("06a")  # runs until interrupted
    async with contextlib.AsyncExitStack() as stack:
        with serve_replay(trace) as (url, _):
            client = await stack.enter_async_context(
                ComfyClient(
                    url, reconnect_delay=(0.01, 0.05), poll_interval=0.1, unavailable_after=0.3
                )
            )
            job = await stack.enter_async_context(
                client.submit_and_watch(trace.prompts()[0], timeout=10)
            )
            async for event in job:
                if is_json_message(event) and event["type"] == "executing":
                    break
        # The worker is gone now: no socket, every poll refused.
        with pytest.raises(WorkerUnavailable):
            await job.wait()


async def test_two_watchers_of_one_prompt_both_finish() -> None:
    trace = load_trace("01")
    prompt_id = new_prompt_id()
    with serve_replay(trace) as (url, _):
        async with ComfyClient(url, **FAST) as client:
            async with client.watch(prompt_id, timeout=5) as spectator:
                result = await client.run_prompt(trace.prompts()[0], prompt_id=prompt_id, timeout=5)
                seen = await spectator.wait()
    assert seen.files == result.files and result.files
