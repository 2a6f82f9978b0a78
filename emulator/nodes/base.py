"""What a node class is to the emulator: its /object_info description and how it runs.

Input specs are written exactly as ComfyUI's `INPUT_TYPES` shows them in /object_info
(`["INT", {"default": 512, "min": 1}]`, `[[...options], {}]`), so validation, error
shapes and /object_info come from one description.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from PIL import Image

from comfygraph.emulator.files import Files

InputSpec = list[Any]
SpecSource = InputSpec | Callable[[Files], InputSpec]
Ui = dict[str, Any]
NodeResult = tuple[tuple[Any, ...], Ui | None]

T = TypeVar("T")


class NodeContext(Protocol):
    """What a running node may do besides computing: the executor implements it."""

    node_id: str
    prompt_id: str
    files: Files
    metadata: dict[str, str]  # PNG text chunks / WebP EXIF that ComfyUI's savers embed

    async def work(self, seconds: float) -> None:
        """Spend simulated GPU time (divided by the emulator's speed)."""

    async def progress(self, value: int, total: int, preview: Image.Image | None = None) -> None:
        """A ProgressBar tick: interrupt check, progress_state, progress, preview frame."""

    async def offload(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking Pillow work off the event loop."""

    def send_text(self, text: str) -> None:
        """`PromptServer.send_progress_text`: a binary TEXT frame to every socket."""

    async def load_model(self, class_type: str, name: str) -> None:
        """Move a model onto the (pretend) GPU: costs time only when it changes."""


RunFn = Callable[[NodeContext, dict[str, Any]], Awaitable[NodeResult]]
# VALIDATE_INPUTS: {input_name: message} for each failing input.
ValidateFn = Callable[[Mapping[str, Any], Files], dict[str, str]]
# IS_CHANGED: extra cache-key material (e.g. the hash of a loaded file).
FingerprintFn = Callable[[Mapping[str, Any], Files], str]


@dataclass(frozen=True)
class NodeDef:
    class_type: str
    run: RunFn
    required: Mapping[str, SpecSource]
    optional: Mapping[str, SpecSource] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()
    output_names: tuple[str, ...] = ()
    output_node: bool = False
    category: str = ""
    python_module: str = "nodes"
    display_name: str = ""
    description: str = ""
    # Stands in for a model (GPU) node: subject to fail_rate, interruptible mid-run.
    simulated: bool = False
    # Inputs whose built-in min/max/combo checks are replaced by `validate`.
    custom_validated: tuple[str, ...] = ()
    validate: ValidateFn | None = None
    fingerprint: FingerprintFn | None = None

    def spec(self, name: str, files: Files) -> tuple[InputSpec, str] | None:
        """(spec, "required" | "optional") of a declared input, else None."""
        for category, specs in (("required", self.required), ("optional", self.optional)):
            if name in specs:
                source = specs[name]
                return (source(files) if callable(source) else source), category
        return None

    def input_names(self) -> list[str]:
        return [*self.required, *self.optional]

    def info(self, files: Files) -> dict[str, Any]:
        """The /object_info entry, key for key as ComfyUI's `node_info` builds it."""
        inputs: dict[str, Any] = {"required": self._resolved(self.required, files)}
        order: dict[str, Any] = {"required": list(self.required)}
        if self.optional:
            inputs["optional"] = self._resolved(self.optional, files)
            order["optional"] = list(self.optional)
        return {
            "input": inputs,
            "input_order": order,
            "output": list(self.outputs),
            "output_is_list": [False] * len(self.outputs),
            "output_name": list(self.output_names or self.outputs),
            "name": self.class_type,
            "display_name": self.display_name or self.class_type,
            "description": self.description,
            "python_module": self.python_module,
            "category": self.category,
            "output_node": self.output_node,
        }

    @staticmethod
    def _resolved(specs: Mapping[str, SpecSource], files: Files) -> dict[str, InputSpec]:
        return {k: (v(files) if callable(v) else v) for k, v in specs.items()}


def INT(default: int, lo: int, hi: int, step: int = 1, **extra: Any) -> InputSpec:
    return ["INT", {"default": default, "min": lo, "max": hi, "step": step, **extra}]


def FLOAT(default: float, lo: float, hi: float, step: float = 0.01, **extra: Any) -> InputSpec:
    return ["FLOAT", {"default": default, "min": lo, "max": hi, "step": step, **extra}]


def STRING(default: str = "", *, multiline: bool = False, **extra: Any) -> InputSpec:
    options: dict[str, Any] = {"default": default, **extra}
    if multiline:
        options["multiline"] = True
    return ["STRING", options]


def BOOLEAN(default: bool, **extra: Any) -> InputSpec:
    return ["BOOLEAN", {"default": default, **extra}]


def COMBO(options: list[str], **extra: Any) -> InputSpec:
    return [list(options), dict(extra)]


def LINK(kind: str, **extra: Any) -> InputSpec:
    return [kind, dict(extra)] if extra else [kind]


SEED = INT(0, 0, 0xFFFFFFFFFFFFFFFF, control_after_generate=True)


def done(*values: Any, ui: Ui | None = None) -> NodeResult:
    return tuple(values), ui
