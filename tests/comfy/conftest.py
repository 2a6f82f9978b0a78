"""Fixtures for ComfyUI-protocol tests: the emulator under real uvicorn, websocket recorders.

Tests wait for websocket events with deadlines (`Recorder.wait_for`), never sleep.
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import struct
import wave
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from PIL import Image

from comfygraph.emulator import create_emulator_app
from tests.servers import serve_in_thread

TIMEOUT = 15.0


@dataclass
class Message:
    """One websocket frame: JSON as (type, data); binary as ("binary:<event>", decoded)."""

    type: str
    data: Any
    raw: bytes | None = None

    @classmethod
    def parse(cls, frame: str | bytes) -> Message:
        if isinstance(frame, str):
            body = json.loads(frame)
            return cls(body["type"], body["data"])
        event = struct.unpack(">I", frame[:4])[0]
        data: dict[str, Any] = {}
        if event == 1:
            data = {"format": struct.unpack(">I", frame[4:8])[0], "image": frame[8:]}
        elif event == 3:
            size = struct.unpack(">I", frame[4:8])[0]
            data = {"node_id": frame[8 : 8 + size].decode(), "text": frame[8 + size :].decode()}
        elif event == 4:
            size = struct.unpack(">I", frame[4:8])[0]
            data = {"metadata": json.loads(frame[8 : 8 + size]), "image": frame[8 + size :]}
        return cls(f"binary:{event}", data, frame)

    @property
    def prompt_id(self) -> str | None:
        if isinstance(self.data, dict):
            meta = self.data.get("metadata")
            return self.data.get("prompt_id") or (
                meta.get("prompt_id") if isinstance(meta, dict) else None
            )
        return None


@dataclass
class Recorder:
    """Reads a websocket in the background and keeps every frame."""

    connection: Any
    messages: list[Message] = field(default_factory=list)
    closed: bool = False
    close_code: int | None = None

    def __post_init__(self) -> None:
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for frame in self.connection:
                self.messages.append(Message.parse(frame))
                self._changed.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed = True
            self.close_code = self.connection.close_code
            self._changed.set()

    async def wait_for(
        self, predicate: Callable[[Message], bool], *, after: int = 0, within: float = TIMEOUT
    ) -> Message:
        """The first message at index >= after matching predicate (waiting for it)."""
        async with asyncio.timeout(within):
            while True:
                for message in self.messages[after:]:
                    if predicate(message):
                        return message
                if self.closed:
                    raise AssertionError(
                        f"socket closed before the awaited message: {self.types()}"
                    )
                self._changed.clear()
                if any(predicate(m) for m in self.messages[after:]):
                    continue
                await self._changed.wait()

    async def wait_count(self, count: int, within: float = TIMEOUT) -> None:
        async with asyncio.timeout(within):
            while len(self.messages) < count:
                if self.closed:
                    raise AssertionError(
                        f"closed after {len(self.messages)} of {count}: {self.types()}"
                    )
                self._changed.clear()
                if len(self.messages) >= count:
                    break
                await self._changed.wait()

    async def wait_closed(self, within: float = TIMEOUT) -> None:
        async with asyncio.timeout(within):
            while not self.closed:
                self._changed.clear()
                if self.closed:
                    break
                await self._changed.wait()

    async def done(self, prompt_id: str, within: float = TIMEOUT) -> Message:
        """ComfyUI's end-of-prompt marker: executing with node null for this prompt."""
        return await self.wait_for(
            lambda m: (
                m.type == "executing" and m.data.get("node") is None and m.prompt_id == prompt_id
            ),
            within=within,
        )

    def types(self) -> list[str]:
        return [m.type for m in self.messages]

    def of(self, prompt_id: str) -> list[Message]:
        return [m for m in self.messages if m.prompt_id == prompt_id]

    async def close(self) -> None:
        await self.connection.close()
        await self._task


@dataclass
class Emulator:
    url: str
    http: httpx.AsyncClient
    recorders: list[Recorder] = field(default_factory=list)

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1) + "/ws"

    async def connect(
        self, client_id: str | None = None, *, first: dict[str, Any] | None = None
    ) -> Recorder:
        url = self.ws_url + (f"?clientId={client_id}" if client_id else "")
        connection = await websockets.connect(url, max_size=None)
        if first is not None:
            await connection.send(json.dumps(first))
        recorder = Recorder(connection)
        self.recorders.append(recorder)
        return recorder

    async def fault(self, **body: Any) -> dict[str, Any]:
        response = await self.http.post("/emulator/faults", json=body)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def upload(self, name: str, content: bytes, **form: str) -> str:
        response = await self.http.post(
            "/upload/image", files={"image": (name, content)}, data=form
        )
        assert response.status_code == 200, response.text
        stored: str = response.json()["name"]
        return stored

    async def queue(
        self, prompt: dict[str, Any], client_id: str | None = None, **extra: Any
    ) -> str:
        body: dict[str, Any] = {"prompt": prompt, **extra}
        if client_id is not None:
            body["client_id"] = client_id
        response = await self.http.post("/prompt", json=body)
        assert response.status_code == 200, response.text
        prompt_id: str = response.json()["prompt_id"]
        return prompt_id

    async def run(self, prompt: dict[str, Any], socket: Recorder, client_id: str) -> dict[str, Any]:
        """Queue, wait for the end marker, return the history entry."""
        prompt_id = await self.queue(prompt, client_id)
        await socket.done(prompt_id)
        entry: dict[str, Any] = (await self.http.get(f"/history/{prompt_id}")).json()[prompt_id]
        return entry


@pytest.fixture
async def emulator(tmp_path: Path) -> AsyncIterator[Emulator]:
    app = create_emulator_app(speed=1000.0, seed=0, output_dir=tmp_path / "output")
    with serve_in_thread(app) as url:
        async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT) as http:
            emu = Emulator(url, http)
            try:
                yield emu
            finally:
                for recorder in emu.recorders:
                    await recorder.close()


@pytest.fixture
def emulator_factory(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """For tests that need other settings (fail_rate, speed)."""
    stack: list[Any] = []

    def start(**settings: Any) -> str:
        app = create_emulator_app(output_dir=tmp_path / f"output{len(stack)}", **settings)
        context = serve_in_thread(app)
        stack.append(context)
        url: str = context.__enter__()
        return url

    yield start
    for context in reversed(stack):
        context.__exit__(None, None, None)


# ------------------------------------------------------------------ test media


def png_bytes(
    width: int = 96, height: int = 64, color: tuple[int, int, int] = (200, 80, 40)
) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="PNG")
    return out.getvalue()


def wav_bytes(seconds: float, rate: int = 16000, channels: int = 1) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as handle:
        handle.setnchannels(channels)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        count = round(seconds * rate)
        samples = (int(2000 * math.sin(i / 8)) for i in range(count))
        handle.writeframes(
            b"".join(struct.pack("<" + "h" * channels, *([s] * channels)) for s in samples)
        )
    return out.getvalue()


def webp_bytes(frames: int, fps: float, size: tuple[int, int] = (64, 48)) -> bytes:
    images = [Image.new("RGB", size, (20 * n % 255, 100, 150)) for n in range(frames)]
    out = io.BytesIO()
    images[0].save(
        out, format="WEBP", save_all=True, append_images=images[1:], duration=int(1000 / fps)
    )
    return out.getvalue()


def webp_facts(content: bytes) -> tuple[int, tuple[int, int], float]:
    """(frames, size, seconds) of an animated WebP."""
    with Image.open(io.BytesIO(content)) as image:
        total = 0
        frames: int = getattr(image, "n_frames", 1)
        for index in range(frames):
            image.seek(index)
            image.load()  # Pillow fills in a WebP frame's duration when it decodes it
            total += image.info.get("duration", 0)
        return frames, image.size, total / 1000.0


def wav_facts(content: bytes) -> tuple[int, int, float]:
    """(sample rate, channels, seconds) of a WAV file."""
    with wave.open(io.BytesIO(content), "rb") as handle:
        return (
            handle.getframerate(),
            handle.getnchannels(),
            handle.getnframes() / handle.getframerate(),
        )


SIMPLE: dict[str, Any] = {
    "1": {
        "class_type": "EmptyImage",
        "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 255},
    },
    "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "simple"}},
}


def text_to_image(
    seed: int = 1, steps: int = 4, width: int = 64, height: int = 64
) -> dict[str, Any]:
    """A minimal SD graph (simulated nodes) used by fault and preview tests."""
    return {
        "1": {
            "class_type": "CheckpointLoaderSimple",
            "inputs": {"ckpt_name": "dreamshaper_8.safetensors"},
        },
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red fox", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["1", 1]}},
        "4": {
            "class_type": "EmptyLatentImage",
            "inputs": {"width": width, "height": height, "batch_size": 1},
        },
        "5": {
            "class_type": "KSampler",
            "inputs": {
                "model": ["1", 0],
                "seed": seed,
                "steps": steps,
                "cfg": 7.0,
                "sampler_name": "euler",
                "scheduler": "normal",
                "positive": ["2", 0],
                "negative": ["3", 0],
                "latent_image": ["4", 0],
                "denoise": 1.0,
            },
        },
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
        "7": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": "t2i"}},
    }
