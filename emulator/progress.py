"""progress_state snapshots and ProgressBar ticks, in ComfyUI 0.8.0's order and types.

Start of a node: value 0.0 / max 1.0 (floats). A tick sets the ints it was given.
Finish copies max into value (so a cached output node shows ints 1/1). Every change
re-sends the whole map of nodes that have left "pending".
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from comfygraph.emulator import media
from comfygraph.emulator.hub import (
    PREVIEW_IMAGE,
    PREVIEW_IMAGE_WITH_METADATA,
    Hub,
    preview_frame,
    preview_with_metadata,
)


class ProgressReporter:
    def __init__(self, hub: Hub, prompt_id: str, client_id: str | None, previews: bool) -> None:
        self._hub = hub
        self._prompt_id = prompt_id
        self._client_id = client_id
        self._previews = previews
        self._nodes: dict[str, dict[str, Any]] = {}

    def start(self, node_id: str) -> None:
        entry = self._entry(node_id)
        entry.update(state="running", value=0.0, max=1.0)
        self._publish()

    def finish(self, node_id: str) -> None:
        entry = self._entry(node_id)
        entry.update(state="finished", value=entry["max"])
        self._publish()

    def tick(self, node_id: str, value: int, total: int, preview: Image.Image | None) -> None:
        """What ComfyUI's progress hook sends after its interrupt check."""
        self._entry(node_id).update(value=value, max=total)
        jpeg = media.preview_jpeg(preview) if preview is not None and self._previews else None
        metadata = self._hub.supports_preview_metadata(self._client_id)
        self._publish()
        if jpeg is not None and metadata:
            meta = {
                "node_id": node_id,
                "prompt_id": self._prompt_id,
                "display_node_id": node_id,
                "parent_node_id": None,
                "real_node_id": node_id,
                "image_type": "image/jpeg",
            }
            self._hub.send_binary(
                PREVIEW_IMAGE_WITH_METADATA, preview_with_metadata(jpeg, meta), self._client_id
            )
        progress = {"value": value, "max": total, "prompt_id": self._prompt_id, "node": node_id}
        self._hub.send("progress", progress, self._client_id)
        if jpeg is not None and not metadata:
            self._hub.send_binary(PREVIEW_IMAGE, preview_frame(jpeg), self._client_id)

    def _entry(self, node_id: str) -> dict[str, Any]:
        if node_id not in self._nodes:
            self._nodes[node_id] = {
                "value": 0,
                "max": 1,
                "state": "pending",
                "node_id": node_id,
                "prompt_id": self._prompt_id,
                "display_node_id": node_id,
                "parent_node_id": None,
                "real_node_id": node_id,
            }
        return self._nodes[node_id]

    def _publish(self) -> None:
        nodes = {k: dict(v) for k, v in self._nodes.items() if v["state"] != "pending"}
        self._hub.send(
            "progress_state", {"prompt_id": self._prompt_id, "nodes": nodes}, self._client_id
        )
