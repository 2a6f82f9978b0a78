"""What a worker can run, read from its /object_info, and what a graph needs.

A worker can run a graph when it has every `class_type` of it and every model file the
graph names. Model files are the string values of loader-style inputs (`ckpt_name`,
`unet_name`, `model_name`, ... or any value ending like a weights file); a worker has
the ones its /object_info offers as the choices of those inputs (legacy `[[...], {}]`
or V3 `["COMBO", {"options": [...]}]`), as ComfyUI validates them (value_not_in_list).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

MODEL_INPUTS = frozenset(
    {
        "ckpt_name", "unet_name", "vae_name", "clip_name", "clip_name1", "clip_name2",
        "clip_name3", "clip_name4", "lora_name", "model_name", "control_net_name",
        "style_model_name", "gligen_name", "hypernetwork_name", "upscale_model", "model",
    }
)  # fmt: skip
MODEL_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft", ".onnx")


def _is_model_input(name: str, value: str) -> bool:
    return name in MODEL_INPUTS or value.lower().endswith(MODEL_SUFFIXES)


@dataclass(frozen=True)
class Requirements:
    nodes: frozenset[str]
    models: frozenset[str]

    @property
    def model_key(self) -> str:
        """The model set as one comparable value (affinity: same key, no reload)."""
        return "|".join(sorted(self.models))


@dataclass(frozen=True)
class Capabilities:
    nodes: frozenset[str]
    models: frozenset[str]

    def missing(self, needs: Requirements) -> str | None:
        """Why this worker cannot run it ("node X", "model Y"), or None when it can."""
        nodes = sorted(needs.nodes - self.nodes)
        if nodes:
            return f"node {', '.join(nodes)}"
        models = sorted(needs.models - self.models)
        if models:
            return f"model {', '.join(models)}"
        return None

    def summary(self) -> dict[str, int]:
        return {"nodes": len(self.nodes), "models": len(self.models)}


def requirements(graph: Mapping[str, Any]) -> Requirements:
    """The class types and model files an API-format graph names."""
    nodes: set[str] = set()
    models: set[str] = set()
    for node in graph.values():
        if not isinstance(node, Mapping):
            continue
        class_type = node.get("class_type")
        if isinstance(class_type, str):
            nodes.add(class_type)
        inputs = node.get("inputs")
        for name, value in inputs.items() if isinstance(inputs, Mapping) else ():
            if isinstance(value, str) and value and _is_model_input(name, value):
                models.add(value)
    return Requirements(frozenset(nodes), frozenset(models))


def _combo_options(spec: Any) -> list[str]:
    if not isinstance(spec, list) or not spec:
        return []
    first = spec[0]
    if isinstance(first, list):  # legacy [[options...], {...}]
        return [o for o in first if isinstance(o, str)]
    if first == "COMBO" and len(spec) > 1 and isinstance(spec[1], dict):
        options = spec[1].get("options")
        return [o for o in options if isinstance(o, str)] if isinstance(options, list) else []
    return []


def parse_object_info(info: Mapping[str, Any]) -> Capabilities:
    """Capabilities from a full GET /object_info answer."""
    models: set[str] = set()
    for entry in info.values():
        inputs = entry.get("input") if isinstance(entry, Mapping) else None
        if not isinstance(inputs, Mapping):
            continue
        for group in ("required", "optional"):
            specs = inputs.get(group)
            for name, spec in specs.items() if isinstance(specs, Mapping) else ():
                models.update(o for o in _combo_options(spec) if _is_model_input(name, o))
    return Capabilities(frozenset(str(k) for k in info), frozenset(models))


def blocked_reason(needs: Requirements, fleet: Iterable[Capabilities | None]) -> str | None:
    """None when some worker of `fleet` (the healthy, non-draining ones) can run it;
    else why not, e.g. "no healthy worker has node MultiTalkModelLoader"."""
    known = [c for c in fleet if c is not None]
    if not known:
        return "no healthy worker"
    reasons = []
    for caps in known:
        reason = caps.missing(needs)
        if reason is None:
            return None
        reasons.append(reason)
    # The one most workers share names the gap best; ties by name, so it is stable.
    common = min(set(reasons), key=lambda r: (-reasons.count(r), r))
    return f"no healthy worker has {common}"
