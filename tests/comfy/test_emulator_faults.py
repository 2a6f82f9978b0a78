"""The emulator's failure switches: fail, stall, interrupt, drop sockets, restart, fail_rate."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import websockets

from tests.comfy.conftest import SIMPLE, Emulator, Recorder, text_to_image

EXECUTION_ERROR_KEYS = {
    "prompt_id", "node_id", "node_type", "executed", "exception_message", "exception_type",
    "traceback", "current_inputs", "current_outputs", "timestamp",
}  # fmt: skip


def executing(node: str) -> Callable[[Any], bool]:
    return lambda m: m.type == "executing" and m.data.get("node") == node


async def test_failed_node_reports_execution_error_like_comfyui(emulator: Emulator) -> None:
    await emulator.fault(
        action="fail",
        class_type="KSampler",
        message="CUDA out of memory",
        exception_type="torch.OutOfMemoryError",
    )
    socket = await emulator.connect("c")
    entry = await emulator.run(text_to_image(), socket, "c")
    prompt_id = entry["prompt"][1]

    types = [m.type for m in socket.of(prompt_id)]
    assert types[-3:] == ["executing", "execution_error", "executing"]  # ... node 5, error, end
    assert "execution_success" not in types
    error = next(m.data for m in socket.of(prompt_id) if m.type == "execution_error")
    assert set(error) == EXECUTION_ERROR_KEYS
    assert (error["node_id"], error["node_type"]) == ("5", "KSampler")
    assert error["exception_type"] == "torch.OutOfMemoryError"
    assert error["exception_message"] == "CUDA out of memory\n"
    assert sorted(error["executed"]) == ["1", "2", "3", "4"]
    assert sorted(error["current_outputs"]) == sorted(text_to_image())
    assert error["current_inputs"]["seed"] == [1] and error["current_inputs"]["steps"] == [4]
    assert all(isinstance(line, str) for line in error["traceback"])
    assert entry["status"]["status_str"] == "error" and entry["status"]["completed"] is False
    assert entry["status"]["messages"][-1][0] == "execution_error"
    assert entry["outputs"] == {}

    # One-shot: the same prompt now succeeds, re-using the cached upstream nodes.
    again = await emulator.run(text_to_image(), socket, "c")
    assert again["status"]["status_str"] == "success"
    assert again["status"]["messages"][1][1]["nodes"] == ["1", "2", "3", "4"]


async def test_stalled_sampler_is_interrupted_at_its_next_step(emulator: Emulator) -> None:
    await emulator.fault(action="stall", class_type="KSampler")
    socket = await emulator.connect("c")
    prompt_id = await emulator.queue(text_to_image(), "c")
    await socket.wait_for(executing("5"))
    assert (await emulator.http.get("/emulator/faults")).json()["stalled"] == ["5"]
    assert (await emulator.http.get("/history/" + prompt_id)).json() == {}

    response = await emulator.http.post("/interrupt", json={"prompt_id": prompt_id})
    assert (response.status_code, response.content) == (200, b"")
    await socket.done(prompt_id)

    mine = socket.of(prompt_id)
    interrupted = next(m.data for m in mine if m.type == "execution_interrupted")
    assert (interrupted["node_id"], interrupted["node_type"]) == ("5", "KSampler")
    assert not [m for m in mine if m.type == "progress"]  # stopped before its first tick
    history = (await emulator.http.get("/history/" + prompt_id)).json()[prompt_id]
    assert history["status"]["status_str"] == "error"
    assert history["status"]["messages"][-1][0] == "execution_interrupted"


async def test_released_stall_finishes_normally(emulator: Emulator) -> None:
    await emulator.fault(action="stall", node_id="2")
    socket = await emulator.connect("c")
    prompt_id = await emulator.queue(SIMPLE, "c")
    await socket.wait_for(executing("2"))
    assert (await emulator.fault(action="release"))["released"] == 1
    await socket.done(prompt_id)
    assert "execution_success" in [m.type for m in socket.of(prompt_id)]


async def test_drop_websockets_closes_every_socket(emulator: Emulator) -> None:
    first, second = await emulator.connect("a"), await emulator.connect()
    await first.wait_count(1)
    await second.wait_count(1)
    assert (await emulator.fault(action="drop_websockets"))["dropped"] == 2
    await first.wait_closed()
    await second.wait_closed()
    assert first.close_code == second.close_code == 1001
    again = await emulator.connect("a")
    greeting = await again.wait_for(lambda m: m.type == "status")
    assert greeting.data["sid"] == "a"


async def test_restart_forgets_queue_history_and_the_running_prompt(emulator: Emulator) -> None:
    socket = await emulator.connect("c")
    finished = await emulator.run(SIMPLE, socket, "c")
    await emulator.fault(action="stall", node_id="5")
    running = await emulator.queue(text_to_image(), "c")
    await emulator.queue(
        SIMPLE | {"3": {**SIMPLE["3"], "inputs": {**SIMPLE["3"]["inputs"], "filename_prefix": "x"}}}
    )
    await socket.wait_for(executing("5"))
    assert len((await emulator.http.get("/queue")).json()["queue_pending"]) == 1

    await emulator.fault(action="restart")
    await socket.wait_closed()
    assert socket.close_code == 1012
    assert (await emulator.http.get("/queue")).json() == {"queue_running": [], "queue_pending": []}
    assert (await emulator.http.get("/history")).json() == {}
    assert (await emulator.http.get("/prompt")).json() == {"exec_info": {"queue_remaining": 0}}
    assert (await emulator.http.get("/emulator/faults")).json()["stalled"] == []
    assert finished["prompt"][1] not in (await emulator.http.get("/history")).json()

    socket = await emulator.connect("c")
    response = await emulator.http.post("/prompt", json={"prompt": SIMPLE, "client_id": "c"})
    assert response.json()["number"] == 0  # the priority counter restarted too
    await socket.done(response.json()["prompt_id"])
    assert running not in (await emulator.http.get("/history")).json()


async def test_fail_rate_one_fails_model_nodes_only(emulator_factory: Callable[..., str]) -> None:
    url = emulator_factory(speed=1000.0, fail_rate=1.0, seed=3)
    async with httpx.AsyncClient(base_url=url) as http:
        emulator = Emulator(url, http)
        socket = await emulator.connect("c")
        entry = await emulator.run(text_to_image(), socket, "c")
        event, error = entry["status"]["messages"][-1]
        assert event == "execution_error"
        assert (
            error["node_type"] == "CheckpointLoaderSimple"
            and error["exception_type"] == "RuntimeError"
        )
        assert (await emulator.run(SIMPLE, socket, "c"))["status"]["status_str"] == "success"
        await socket.close()


async def test_speed_and_fail_rate_switches(emulator: Emulator) -> None:
    state = await emulator.fault(action="speed", speed=5000)
    assert state["speed"] == 5000.0
    assert (await emulator.fault(action="fail_rate", fail_rate=0.25))["fail_rate"] == 0.25
    await emulator.fault(action="fail", node_id="9", times=2)
    assert (await emulator.http.get("/emulator/faults")).json()["rules"] == [
        {"action": "fail", "class_type": None, "node_id": "9", "times": 2}
    ]
    assert (await emulator.fault(action="clear"))["rules"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"action": "explode"},
        {"action": "speed", "speed": 0},
        {"action": "fail", "times": 0},
        ["restart"],
    ],
)
async def test_bad_admin_requests_are_refused(emulator: Emulator, body: Any) -> None:
    response = await emulator.http.post("/emulator/faults", json=body)
    assert response.status_code == 400 and "error" in response.json()


async def test_admin_route_is_not_a_comfyui_route(emulator: Emulator) -> None:
    assert (
        await emulator.http.post("/api/emulator/faults", json={"action": "clear"})
    ).status_code == 404


async def test_socket_of_a_restarted_server_can_reconnect(emulator: Emulator) -> None:
    socket: Recorder = await emulator.connect("c")
    await socket.wait_count(1)
    await emulator.fault(action="restart")
    await socket.wait_closed()
    with pytest.raises(websockets.InvalidStatus):
        await websockets.connect(
            emulator.ws_url, additional_headers={"Origin": "http://evil.example"}
        )
    again = await emulator.connect("c")
    assert (await again.wait_for(lambda m: m.type == "status")).data["sid"] == "c"
