"""A worker that lacks some custom nodes or model files (a heterogeneous fleet).

The nodes are absent from /object_info (a prompt naming one is invalid_prompt, as on
ComfyUI), the models absent from every loader's choices (value_not_in_list) and from
/models/{folder}.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from comfygraph.emulator.catalog import MODEL_FILES
from comfygraph.emulator.nodes.base import NodeDef, SpecSource


def _without(spec: Any, missing: frozenset[str]) -> Any:
    """A combo spec with the missing names taken out (other specs unchanged)."""
    if isinstance(spec, list) and spec and isinstance(spec[0], list):
        return [[o for o in spec[0] if o not in missing], *spec[1:]]
    if isinstance(spec, list) and len(spec) > 1 and spec[0] == "COMBO":
        options = spec[1].get("options") if isinstance(spec[1], dict) else None
        if isinstance(options, list):
            return ["COMBO", {**spec[1], "options": [o for o in options if o not in missing]}]
    return spec


def _narrowed(source: SpecSource, missing: frozenset[str]) -> SpecSource:
    if callable(source):
        call = source
        return lambda files: _without(call(files), missing)
    return _without(source, missing)


def restrict(
    registry: dict[str, NodeDef], missing_nodes: Iterable[str], missing_models: Iterable[str]
) -> dict[str, NodeDef]:
    nodes, models = frozenset(missing_nodes), frozenset(missing_models)
    kept = {name: node for name, node in registry.items() if name not in nodes}
    if not models:
        return kept
    return {
        name: dataclasses.replace(
            node,
            required={k: _narrowed(v, models) for k, v in node.required.items()},
            optional={k: _narrowed(v, models) for k, v in node.optional.items()},
        )
        for name, node in kept.items()
    }


def model_files(missing_models: Iterable[str]) -> dict[str, list[str]]:
    missing = frozenset(missing_models)
    return {folder: [n for n in names if n not in missing] for folder, names in MODEL_FILES.items()}
