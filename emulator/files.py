"""The emulator's three ComfyUI folders (input, output, temp) and ComfyUI's file rules.

Names, counters, path checks and upload renaming follow ComfyUI's `folder_paths.py`
and `server.py` so that clients see the same file names as on a real worker.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff")
AUDIO_EXTENSIONS = (".wav", ".mp3", ".flac", ".ogg", ".m4a", ".aac", ".opus")
VIDEO_EXTENSIONS = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".webp", ".gif")

_ANNOTATIONS = {" [output]": "output", " [input]": "input", " [temp]": "temp"}


class UnsafePath(ValueError):
    """A name or subfolder that would leave its ComfyUI folder."""


@dataclass(frozen=True)
class SavePath:
    folder: Path
    filename: str
    counter: int
    subfolder: str


@dataclass(frozen=True)
class Files:
    output: Path
    input: Path
    temp: Path

    def ensure(self) -> None:
        for folder in (self.output, self.input, self.temp):
            folder.mkdir(parents=True, exist_ok=True)

    def reset_temp(self) -> None:
        """A (re)started ComfyUI empties its temp folder."""
        shutil.rmtree(self.temp, ignore_errors=True)
        self.temp.mkdir(parents=True, exist_ok=True)

    def by_type(self, kind: str | None) -> Path | None:
        return {"output": self.output, "input": self.input, "temp": self.temp}.get(kind or "")

    def annotated(self, name: str) -> tuple[str, Path | None]:
        """Split `"sub/x.png [output]"` into the name and the folder its annotation names."""
        for suffix, kind in _ANNOTATIONS.items():
            if name.endswith(suffix):
                return name[: -len(suffix)], self.by_type(kind)
        return name, None

    def input_path(self, name: str) -> Path | None:
        """The file a LoadImage-style value names, or None when it does not exist."""
        if not name:
            return None
        plain, folder = self.annotated(name)
        try:
            path = inside(folder or self.input, plain)
        except UnsafePath:
            return None
        return path if path.is_file() else None

    def listing(self, extensions: tuple[str, ...]) -> list[str]:
        """Top-level files of the input folder, as LoadImage's combo lists them."""
        if not self.input.is_dir():
            return []
        names = [p.name for p in self.input.iterdir() if p.is_file()]
        return sorted(n for n in names if n.lower().endswith(extensions))

    def save_path(self, prefix: str, folder: Path, width: int = 0, height: int = 0) -> SavePath:
        """ComfyUI's `get_save_image_path`: next free counter for `prefix` in its subfolder."""
        prefix = prefix.replace("%width%", str(width)).replace("%height%", str(height))
        normal = os.path.normpath(prefix)
        subfolder, filename = os.path.dirname(normal), os.path.basename(normal)
        full = inside(folder, subfolder) if subfolder else folder
        full.mkdir(parents=True, exist_ok=True)
        counter = 1 + max(
            (_counter_of(entry, filename) for entry in os.listdir(full)),
            default=0,
        )
        return SavePath(full, filename, counter, subfolder)


def _counter_of(entry: str, filename: str) -> int:
    head = entry[: len(filename) + 1]
    if os.path.normcase(head[:-1]) != os.path.normcase(filename) or head[-1:] != "_":
        return 0
    try:
        return int(entry[len(filename) + 1 :].split("_")[0])
    except ValueError:
        return 0


def inside(folder: Path, relative: str) -> Path:
    """`folder/relative`, refusing anything that escapes `folder` (ComfyUI's commonpath test)."""
    base = os.path.abspath(folder)
    target = os.path.abspath(os.path.join(base, relative))
    if os.path.commonpath((base, target)) != base:
        raise UnsafePath(relative)
    return Path(target)


def store_upload(
    folder: Path, subfolder: str, filename: str, content: bytes, *, overwrite: bool
) -> str:
    """Save an upload as ComfyUI does and return the name it is stored under.

    Without overwrite a clash is renamed `name (1).ext`, `name (2).ext`, ... unless the
    existing file has the same bytes, which is then reused (ComfyUI issue #3465).
    Raises UnsafePath when the subfolder or the name would leave `folder`.
    """
    target = inside(folder, os.path.normpath(subfolder))
    inside(target, filename)
    target.mkdir(parents=True, exist_ok=True)
    stem, ext = os.path.splitext(filename)
    digest = hashlib.sha256(content).digest()
    candidate, i = filename, 1
    while not overwrite and (target / candidate).exists():
        if hashlib.sha256((target / candidate).read_bytes()).digest() == digest:
            return candidate
        candidate = f"{stem} ({i}){ext}"
        i += 1
    (target / candidate).write_bytes(content)
    return candidate


def file_digest(path: Path) -> str:
    """What LoadImage's IS_CHANGED hashes: a changed file must not hit the cache."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
