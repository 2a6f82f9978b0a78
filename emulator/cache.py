"""ComfyUI's "classic" output cache: node outputs keyed by their input signature.

A node's signature covers its class, its literal inputs and, through links, the
signatures of everything upstream (plus IS_CHANGED material such as a loaded file's
hash). Entries not used by the current prompt are dropped when it starts, so an
identical re-submission is fully cached and an unrelated prompt clears the cache.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from comfygraph.emulator.files import Files
from comfygraph.emulator.nodes.base import NodeDef, Ui


@dataclass(frozen=True)
class Entry:
    outputs: tuple[Any, ...]
    ui: Ui | None


class OutputCache:
    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}
        self._keys: dict[str, str | None] = {}

    def set_prompt(
        self, prompt: dict[str, Any], registry: dict[str, NodeDef], files: Files
    ) -> None:
        """Compute this prompt's signatures and forget entries it does not use."""
        self._keys = {}
        for node_id in prompt:
            self._keys[node_id] = _signature(node_id, prompt, registry, files, self._keys, set())
        used = {key for key in self._keys.values() if key is not None}
        self._entries = {k: v for k, v in self._entries.items() if k in used}

    def get(self, node_id: str) -> Entry | None:
        key = self._keys.get(node_id)
        return self._entries.get(key) if key else None

    def set(self, node_id: str, entry: Entry) -> None:
        key = self._keys.get(node_id)
        if key:
            self._entries[key] = entry

    def clear(self) -> None:
        self._entries.clear()


def _signature(
    node_id: str,
    prompt: dict[str, Any],
    registry: dict[str, NodeDef],
    files: Files,
    memo: dict[str, str | None],
    visiting: set[str],
) -> str | None:
    """None when the node cannot be keyed (broken link, cycle): it is then never cached."""
    if node_id in memo:
        return memo[node_id]
    node = prompt.get(node_id)
    if not isinstance(node, dict) or node_id in visiting:
        return None
    definition = registry.get(str(node.get("class_type")))
    inputs = node.get("inputs")
    if definition is None or not isinstance(inputs, dict):
        return None
    visiting.add(node_id)
    parts: list[Any] = [definition.class_type]
    if definition.fingerprint is not None:
        parts.append(definition.fingerprint(inputs, files))
    for name in sorted(inputs):
        value = inputs[name]
        if isinstance(value, list) and len(value) == 2:
            upstream = _signature(str(value[0]), prompt, registry, files, memo, visiting)
            if upstream is None:
                visiting.discard(node_id)
                memo[node_id] = None
                return None
            parts.append([name, upstream, value[1]])
        else:
            parts.append([name, value])
    visiting.discard(node_id)
    key = hashlib.sha256(json.dumps(parts, default=repr).encode()).hexdigest()
    memo[node_id] = key
    return key
