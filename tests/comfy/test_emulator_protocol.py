"""Protocol behaviour the recorded traces do not exercise: previews, priorities, /view
rules, history paging, audio output, /object_info, /free, uploads to temp."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import websockets
from PIL import Image

from comfygraph.emulator import create_emulator_app
from tests.comfy.conftest import (
    SIMPLE,
    Emulator,
    Recorder,
    png_bytes,
    text_to_image,
    wav_bytes,
    wav_facts,
)


async def test_legacy_previews_follow_progress(emulator: Emulator) -> None:
    socket = await emulator.connect("legacy")
    prompt_id = await emulator.queue(text_to_image(steps=3), "legacy")
    await socket.done(prompt_id)
    start = next(n for n, m in enumerate(socket.messages) if m.type == "progress")
    ticks = [m.type for m in socket.messages[start - 1 : start + 8]]
    assert ticks == ["progress_state", "progress", "binary:1"] * 3
    preview = next(m for m in socket.messages if m.type == "binary:1")
    assert preview.data["format"] == 1 and preview.data["image"][:3] == b"\xff\xd8\xff"
    with Image.open(io.BytesIO(preview.data["image"])) as image:
        assert image.format == "JPEG" and image.size == (8, 8)  # latent size: 64 / 8


async def test_metadata_previews_come_before_progress(emulator: Emulator) -> None:
    flags = {"type": "feature_flags", "data": {"supports_preview_metadata": True}}
    socket = await emulator.connect("meta", first=flags)
    await socket.wait_for(lambda m: m.type == "feature_flags")
    prompt_id = await emulator.queue(text_to_image(steps=2), "meta")
    await socket.done(prompt_id)
    start = next(n for n, m in enumerate(socket.messages) if m.type == "binary:4")
    assert [m.type for m in socket.messages[start - 1 : start + 5]] == [
        "progress_state",
        "binary:4",
        "progress",
    ] * 2
    meta = socket.messages[start].data["metadata"]
    assert meta == {
        "node_id": "5",
        "prompt_id": prompt_id,
        "display_node_id": "5",
        "parent_node_id": None,
        "real_node_id": "5",
        "image_type": "image/jpeg",
    }
    assert not [m for m in socket.messages if m.type == "binary:1"]


async def test_previews_can_be_switched_off_per_prompt(emulator: Emulator) -> None:
    socket = await emulator.connect("quiet")
    prompt_id = await emulator.queue(
        text_to_image(), "quiet", extra_data={"preview_method": "none"}
    )
    await socket.done(prompt_id)
    assert "progress" in socket.types() and "binary:1" not in socket.types()


async def test_priority_front_and_number(emulator: Emulator) -> None:
    await emulator.fault(action="stall", node_id="2")
    socket = await emulator.connect("q")
    first = await emulator.queue(SIMPLE, "q")
    await socket.wait_for(lambda m: m.type == "executing" and m.data.get("node") == "2")

    def variant(prefix: str) -> dict[str, Any]:
        return SIMPLE | {
            "3": {
                "class_type": "SaveImage",
                "inputs": {"images": ["2", 0], "filename_prefix": prefix},
            }
        }

    replies = [
        (
            await emulator.http.post("/prompt", json={"prompt": variant("b"), "client_id": "q"})
        ).json(),
        (
            await emulator.http.post(
                "/prompt", json={"prompt": variant("c"), "client_id": "q", "front": True}
            )
        ).json(),
        (
            await emulator.http.post(
                "/prompt", json={"prompt": variant("d"), "client_id": "q", "number": 0.5}
            )
        ).json(),
    ]
    assert [r["number"] for r in replies] == [1, -2, 0.5]
    queue = (await emulator.http.get("/queue")).json()
    assert [item[1] for item in queue["queue_running"]] == [first]
    assert sorted(item[0] for item in queue["queue_pending"]) == [-2, 0.5, 1]
    assert all(len(item) == 5 for item in queue["queue_pending"])

    await emulator.fault(action="release")
    for reply in replies:
        await socket.done(reply["prompt_id"])
    started = [m.prompt_id for m in socket.messages if m.type == "execution_start"]
    assert started == [
        first,
        replies[1]["prompt_id"],
        replies[2]["prompt_id"],
        replies[0]["prompt_id"],
    ]


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({}, 404),
        ({"filename": "simple_00001_.png", "type": "elsewhere"}, 400),
        ({"filename": "../secret.png"}, 400),
        ({"filename": "/etc/passwd"}, 400),
        ({"filename": "simple_00001_.png", "subfolder": "../../etc"}, 403),
        ({"filename": "nope.png"}, 404),
        ({"filename": "simple_00001_.png"}, 200),
        ({"filename": "simple_00001_.png [output]", "type": "input"}, 200),
    ],
)
async def test_view_path_rules(emulator: Emulator, params: dict[str, str], status: int) -> None:
    socket = await emulator.connect("v")
    await emulator.run(SIMPLE, socket, "v")
    response = await emulator.http.get("/view", params=params)
    assert response.status_code == status
    if status == 200:
        assert response.headers["content-type"] == "image/png"
        assert response.headers["content-disposition"] == 'filename="simple_00001_.png"'


async def test_view_preview_and_channel(emulator: Emulator) -> None:
    socket = await emulator.connect("v")
    await emulator.run(SIMPLE, socket, "v")
    jpeg = await emulator.http.get(
        "/view", params={"filename": "simple_00001_.png", "preview": "jpeg;50"}
    )
    assert jpeg.headers["content-type"] == "image/jpeg" and jpeg.content[:2] == b"\xff\xd8"
    alpha = await emulator.http.get(
        "/view", params={"filename": "simple_00001_.png", "channel": "a"}
    )
    assert alpha.headers["content-type"] == "image/png"


async def test_history_paging_and_deletion(emulator: Emulator) -> None:
    socket = await emulator.connect("h")
    ids = []
    for n in range(3):
        prompt = SIMPLE | {"1": {**SIMPLE["1"], "inputs": {**SIMPLE["1"]["inputs"], "color": n}}}
        ids.append((await emulator.run(prompt, socket, "h"))["prompt"][1])
    assert list((await emulator.http.get("/history", params={"max_items": 2})).json()) == ids[1:]
    assert (
        list((await emulator.http.get("/history", params={"max_items": 1, "offset": 0})).json())
        == ids[:1]
    )
    assert (await emulator.http.get("/history", params={"max_items": "x"})).status_code == 500
    deleted = await emulator.http.post("/history", json={"delete": [ids[0]]})
    assert (deleted.status_code, deleted.content) == (200, b"")
    assert list((await emulator.http.get("/api/history")).json()) == ids[1:]
    await emulator.http.post("/history", json={"clear": True})
    assert (await emulator.http.get("/history")).json() == {}


async def test_audio_outputs_are_wav_files_of_the_requested_length(emulator: Emulator) -> None:
    stored = await emulator.upload("voice.wav", wav_bytes(0.75, rate=16000))
    prompt = {
        "1": {
            "class_type": "CheckpointLoaderSimple",
            "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"},
        },
        "2": {"class_type": "EmptyLatentAudio", "inputs": {"seconds": 1.5, "batch_size": 1}},
        "3": {"class_type": "VAEDecodeAudio", "inputs": {"samples": ["2", 0], "vae": ["1", 2]}},
        "4": {
            "class_type": "SaveAudio",
            "inputs": {"audio": ["3", 0], "filename_prefix": "audio/music"},
        },
        "5": {"class_type": "LoadAudio", "inputs": {"audio": stored}},
        "6": {
            "class_type": "SaveAudio",
            "inputs": {"audio": ["5", 0], "filename_prefix": "audio/voice"},
        },
    }
    socket = await emulator.connect("a")
    entry = await emulator.run(prompt, socket, "a")
    facts = {}
    for node in ("4", "6"):
        (ref,) = entry["outputs"][node]["audio"]
        assert ref["subfolder"] == "audio" and ref["filename"].endswith("_00001_.wav")
        facts[node] = wav_facts((await emulator.http.get("/view", params=ref)).content)
    assert facts["4"] == (44100, 2, pytest.approx(1.5))
    assert facts["6"] == (16000, 1, pytest.approx(0.75))


async def test_object_info_lists_every_node_and_uploaded_inputs(emulator: Emulator) -> None:
    await emulator.upload("face.png", png_bytes())
    everything = (await emulator.http.get("/api/object_info")).json()
    assert {"KSampler", "WanVideoSampler", "SaveAnimatedWEBP", "AdComposeVideo"} <= set(everything)
    assert everything["LoadImage"]["input"]["required"]["image"] == [
        ["face.png"],
        {"image_upload": True},
    ]
    assert everything["SaveImage"]["output_node"] is True
    assert (await emulator.http.get("/object_info/NoSuchNode")).json() == {}
    assert "emulator" in json.dumps((await emulator.http.get("/system_stats")).json()["devices"])


async def test_free_memory_clears_the_cache(emulator: Emulator) -> None:
    socket = await emulator.connect("f")
    await emulator.run(SIMPLE, socket, "f")
    assert (await emulator.http.post("/free", json={"free_memory": True})).status_code == 200
    entry = await emulator.run(SIMPLE, socket, "f")
    assert entry["status"]["messages"][1] == ["execution_cached", entry["status"]["messages"][1][1]]
    assert entry["status"]["messages"][1][1]["nodes"] == []


async def test_preview_image_goes_to_temp_and_uploads_to_temp(emulator: Emulator) -> None:
    prompt = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 8, "height": 8, "batch_size": 2, "color": 0},
        },
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
    }
    socket = await emulator.connect("p")
    entry = await emulator.run(prompt, socket, "p")
    images = entry["outputs"]["2"]["images"]
    assert [i["type"] for i in images] == ["temp", "temp"]
    assert images[0]["filename"].startswith("ComfyUI_temp_") and images[1]["filename"].endswith(
        "_00002_.png"
    )
    assert (await emulator.http.get("/view", params=images[1])).status_code == 200
    reply = await emulator.http.post(
        "/upload/image", files={"image": ("t.png", png_bytes())}, data={"type": "temp"}
    )
    assert reply.json() == {"name": "t.png", "subfolder": "", "type": "temp"}
    escape = await emulator.http.post(
        "/upload/image", files={"image": ("t.png", b"x")}, data={"subfolder": "../up"}
    )
    assert escape.status_code == 400


async def test_without_client_id_nobody_gets_the_end_marker(emulator: Emulator) -> None:
    watcher = await emulator.connect("watcher")
    await watcher.wait_count(1)  # the greeting
    prompt_id = await emulator.queue(text_to_image(steps=2))
    # progress and progress_state are broadcast; the per-prompt events are not sent at all.
    idle = lambda m: m.type == "status" and m.data["status"]["exec_info"]["queue_remaining"] == 0  # noqa: E731
    await watcher.wait_for(idle, after=1)
    mine = {m.type for m in watcher.of(prompt_id)}
    assert {"progress", "progress_state"} <= mine
    assert not mine & {"execution_start", "executing", "executed", "execution_success"}
    assert (await emulator.http.get(f"/history/{prompt_id}")).json()[prompt_id]["status"][
        "completed"
    ] is True


async def test_api_aliases_serve_the_same_protocol(emulator: Emulator) -> None:
    connection = await websockets.connect(
        emulator.url.replace("http", "ws") + "/api/ws?clientId=alias"
    )
    socket = Recorder(connection)
    emulator.recorders.append(socket)
    await socket.wait_count(1)
    via_api = await emulator.http.post("/api/prompt", json={"prompt": SIMPLE, "client_id": "alias"})
    await socket.done(via_api.json()["prompt_id"])
    assert (await emulator.http.get("/api/history/" + via_api.json()["prompt_id"])).json()
    assert (await emulator.http.get("/api/features")).json()["supports_preview_metadata"] is True


def test_the_factory_builds_nothing_until_served(tmp_path: Path) -> None:
    create_emulator_app(output_dir=tmp_path / "never")
    assert not (tmp_path / "never").exists()
    with pytest.raises(ValueError, match="speed"):
        create_emulator_app(speed=0)


async def test_combo_and_link_shape_errors(emulator: Emulator) -> None:
    prompt = text_to_image()
    prompt["5"]["inputs"]["sampler_name"] = "bogus"
    prompt["6"]["inputs"]["vae"] = ["1", 2, 0]
    response = await emulator.http.post("/prompt", json={"prompt": prompt})
    assert response.status_code == 400
    errors = response.json()["node_errors"]
    (combo,) = errors["5"]["errors"]
    assert combo["type"] == "value_not_in_list"
    assert combo["details"].startswith("sampler_name: 'bogus' not in (list of length")
    assert combo["extra_info"]["input_config"] is None  # long option lists are not echoed
    (link,) = errors["6"]["errors"]
    assert (link["type"], link["extra_info"]["received_value"]) == ("bad_linked_input", ["1", 2, 0])
    assert errors["6"]["dependent_outputs"] == ["7"]
