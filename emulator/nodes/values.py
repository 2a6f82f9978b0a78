"""The values simulated model nodes pass along their links (stand-ins for tensors)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from PIL import Image

from comfygraph.emulator.media import Audio

Images = list[Image.Image]


@dataclass(frozen=True)
class Model:
    """A loaded checkpoint / UNet / CLIP / VAE ...: only its name matters here."""

    kind: str
    name: str
    style: tuple[Image.Image, ...] = ()
    style_weight: float = 0.0

    def __str__(self) -> str:
        return f"<{self.kind} {self.name}>"


@dataclass(frozen=True)
class Conditioning:
    text: str
    guidance: float | None = None
    reference: tuple[Image.Image, ...] = ()
    extra: tuple[tuple[str, Any], ...] = ()

    def with_(self, **changes: Any) -> Conditioning:
        return replace(self, **changes)

    def __str__(self) -> str:
        return f"[[<conditioning {self.text[:40]!r}>, {{}}]]"


@dataclass(frozen=True)
class Latent:
    """What KSampler works on: the size of the result plus what decoding should show."""

    width: int
    height: int
    batch: int = 1
    frames: int = 1
    seed: int = 0
    denoise: float = 1.0
    text: str = ""
    source: tuple[Image.Image, ...] = ()
    style: tuple[Image.Image, ...] = ()
    style_weight: float = 0.0
    motion: str = "Static"
    motion_speed: float = 1.0
    audio_seconds: float | None = None

    def with_(self, **changes: Any) -> Latent:
        return replace(self, **changes)

    def __str__(self) -> str:
        shape = f"{self.batch}x{self.frames}x{self.height // 8}x{self.width // 8}"
        return f"{{'samples': <latent {shape}>}}"


@dataclass(frozen=True)
class Video:
    frames: tuple[Image.Image, ...]
    fps: float
    audio: Audio | None = None

    def __str__(self) -> str:
        return f"<VideoFromFile {len(self.frames)} frames @ {self.fps} fps>"


@dataclass(frozen=True)
class Embeds:
    """Opaque model-side embeddings (CLIP vision output, MultiTalk audio, camera poses ...)."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"<{self.kind}>"
