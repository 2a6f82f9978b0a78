"""ComfyUI wire messages as typed data, parsed once at the edge.

Shapes follow docs/comfyui-protocol.md (ComfyUI 0.3.64 source, and traces of a real 0.8.0).
Every JSON websocket frame is ``{"type": <event>, "data": {...}}``; each known event
has one ``TypedDict`` below with a ``Literal`` tag. Binary frames become small
dataclasses. :func:`parse_ws_message` turns a raw frame into one of them and keeps
unknown events as :class:`UnknownMessage` instead of failing, because servers and
custom nodes add new events over time.

All websocket messages travel server -> client, except ``feature_flags`` which the
client may send once as its first frame (the server then answers with its own).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, NotRequired, TypedDict, TypeGuard, cast

from comfygraph.comfy.errors import ProtocolError

# --------------------------------------------------------------------------- #
# Websocket: JSON messages (server -> client)
# --------------------------------------------------------------------------- #


class ExecInfo(TypedDict):
    queue_remaining: int  # pending + running, counting every client's prompts


class QueueStatus(TypedDict):
    exec_info: ExecInfo


class StatusData(TypedDict):
    status: QueueStatus
    sid: NotRequired[str]  # only on the first status after connecting
    credential_key: NotRequired[str]  # newer servers, loopback/TLS only


class StatusMessage(TypedDict):
    """Broadcast on connect and on every queue change (enqueue, dequeue, done, delete)."""

    type: Literal["status"]
    data: StatusData


class ExecutionStartData(TypedDict):
    prompt_id: str
    timestamp: NotRequired[int]  # server epoch milliseconds


class ExecutionStartMessage(TypedDict):
    type: Literal["execution_start"]
    data: ExecutionStartData


class ExecutionCachedData(TypedDict):
    nodes: list[str]  # nodes whose outputs were cached when the prompt started
    prompt_id: str
    timestamp: NotRequired[int]


class ExecutionCachedMessage(TypedDict):
    """Always sent after execution_start, with ``nodes: []`` on a cold run."""

    type: Literal["execution_cached"]
    data: ExecutionCachedData


class ExecutingData(TypedDict):
    node: str | None  # None: the prompt is finished and its history is readable
    display_node: NotRequired[str]
    prompt_id: NotRequired[str]  # absent in the variant sent right after a reconnect


class ExecutingMessage(TypedDict):
    """A node is about to run; ``node: None`` with the prompt_id ends the prompt."""

    type: Literal["executing"]
    data: ExecutingData


class ProgressData(TypedDict):
    value: int | float
    max: int | float
    prompt_id: NotRequired[str | None]
    node: NotRequired[str | None]


class ProgressMessage(TypedDict):
    """ProgressBar tick of a model-backed node (samplers, upscalers)."""

    type: Literal["progress"]
    data: ProgressData


class NodeProgress(TypedDict):
    value: int | float  # float when the node ran, int when it was cached
    max: int | float
    state: str  # "running" | "finished" (core never sets "error")
    node_id: str
    prompt_id: NotRequired[str]
    display_node_id: NotRequired[str | None]
    parent_node_id: NotRequired[str | None]
    real_node_id: NotRequired[str | None]


class ProgressStateData(TypedDict):
    prompt_id: str
    nodes: dict[str, NodeProgress]  # every node of the prompt that has left "pending"


class ProgressStateMessage(TypedDict):
    """Full per-node snapshot, re-sent on every node start, tick and finish."""

    type: Literal["progress_state"]
    data: ProgressStateData


class FileRef(TypedDict):
    """An output file; fetch it with GET /view?filename=&subfolder=&type=."""

    filename: str
    subfolder: str
    type: str  # "output" | "temp" | "input"
    format: NotRequired[str]  # VideoHelperSuite "gifs" entries
    fullpath: NotRequired[str]  # VHS: a path on the worker, never use it


class NodeOutput(TypedDict, total=False):
    """A node's ``ui`` dict, as sent in ``executed`` and stored in /history outputs.

    The keys below are the ones core and common custom nodes use. Other keys do
    occur and are kept as received: use :func:`iter_outputs` to see every output
    of every kind rather than reading ``images`` alone.
    """

    images: list[FileRef]  # images, and videos from SaveVideo/SaveWEBM (with animated)
    animated: list[bool]
    gifs: list[FileRef]  # VideoHelperSuite
    video: list[FileRef]
    videos: list[FileRef]
    audio: list[FileRef]
    text: list[str]  # PreviewAny and text-producing nodes
    result: list[Any]  # 3-D previews


class ExecutedData(TypedDict):
    node: str
    display_node: NotRequired[str]
    output: NodeOutput | None  # None for a cached output node without ui
    prompt_id: str


class ExecutedMessage(TypedDict):
    """A node produced UI output (also re-sent for cached output nodes)."""

    type: Literal["executed"]
    data: ExecutedData


class ExecutionSuccessData(TypedDict):
    prompt_id: str
    timestamp: NotRequired[int]


class ExecutionSuccessMessage(TypedDict):
    """Sent before history is written: wait for ``executing`` null to read /history."""

    type: Literal["execution_success"]
    data: ExecutionSuccessData


class ExecutionErrorData(TypedDict):
    prompt_id: str
    node_id: str
    node_type: str
    executed: list[str]
    exception_message: str  # always ends with "\n"
    exception_type: str
    traceback: list[str]
    current_inputs: Any  # dict of str(value) lists; can be megabytes
    current_outputs: Any
    timestamp: NotRequired[int]  # absent on the non-fatal ExecutionBlocker variant


class ExecutionErrorMessage(TypedDict):
    type: Literal["execution_error"]
    data: ExecutionErrorData


class ExecutionInterruptedData(TypedDict):
    prompt_id: str
    node_id: str
    node_type: str
    executed: list[str]
    timestamp: NotRequired[int]


class ExecutionInterruptedMessage(TypedDict):
    type: Literal["execution_interrupted"]
    data: ExecutionInterruptedData


class FeatureFlagsMessage(TypedDict):
    """Both directions: the client's first frame, and the server's answer to it."""

    type: Literal["feature_flags"]
    data: dict[str, Any]


JsonMessage = (
    StatusMessage
    | ExecutionStartMessage
    | ExecutionCachedMessage
    | ExecutingMessage
    | ProgressMessage
    | ProgressStateMessage
    | ExecutedMessage
    | ExecutionSuccessMessage
    | ExecutionErrorMessage
    | ExecutionInterruptedMessage
    | FeatureFlagsMessage
)

# --------------------------------------------------------------------------- #
# Websocket: binary frames and unknown messages
# --------------------------------------------------------------------------- #

PREVIEW_IMAGE = 1
TEXT = 3
PREVIEW_IMAGE_WITH_METADATA = 4

_LEGACY_IMAGE_FORMATS = {1: "jpeg", 2: "png"}


class PreviewMetadata(TypedDict, total=False):
    node_id: str
    prompt_id: str
    display_node_id: str
    parent_node_id: str | None
    real_node_id: str
    image_type: str  # "image/jpeg" | "image/png"


@dataclass(frozen=True, slots=True)
class PreviewImage:
    """A binary preview frame: event 1 (legacy) or 4 (with metadata).

    ``image_format`` is ``"jpeg"``, ``"png"`` or whatever else the server named.
    Event 1 frames say nothing about which prompt or node they belong to; event 4
    frames (sent when the client negotiated ``supports_preview_metadata``) do.
    """

    event_type: int
    image_format: str
    data: bytes = field(repr=False)
    metadata: PreviewMetadata | None = None

    @property
    def mime_type(self) -> str:
        return f"image/{self.image_format}"

    @property
    def prompt_id(self) -> str | None:
        return self.metadata.get("prompt_id") if self.metadata else None

    @property
    def node_id(self) -> str | None:
        return self.metadata.get("node_id") if self.metadata else None


@dataclass(frozen=True, slots=True)
class ProgressText:
    """Binary event 3: text a node reports while running (``send_progress_text``).

    Broadcast to every socket and carries no prompt_id.
    """

    node_id: str
    text: str

    event_type = TEXT


@dataclass(frozen=True, slots=True)
class UnknownBinary:
    """A binary frame with an event type this client does not know."""

    event_type: int
    payload: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class UnknownMessage:
    """A JSON frame whose ``type`` this client does not know (kept, never an error)."""

    type: str
    data: Any


BinaryMessage = PreviewImage | ProgressText | UnknownBinary
WsMessage = JsonMessage | BinaryMessage | UnknownMessage


def parse_ws_message(raw: str | bytes) -> WsMessage:
    """Parse one websocket frame (text -> JSON message, bytes -> binary frame).

    Unknown event types come back as :class:`UnknownMessage`/:class:`UnknownBinary`.
    Raises :class:`ProtocolError` only for frames that are malformed: not JSON, not
    ``{"type": str, "data": ...}``, a known type missing a required field, or a
    truncated binary header.
    """
    if isinstance(raw, bytes | bytearray | memoryview):
        return _parse_binary(bytes(raw))
    try:
        obj = json.loads(raw)
    except ValueError as exc:
        raise ProtocolError(f"websocket text frame is not JSON: {raw[:80]!r}") from exc
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise ProtocolError(f"websocket message without a string 'type': {raw[:80]!r}")
    kind: str = obj["type"]
    data = obj.get("data")
    spec = _REQUIRED.get(kind)
    if spec is None:
        return UnknownMessage(type=kind, data=data)
    if not isinstance(data, dict):
        raise ProtocolError(f"{kind} message without a 'data' object")
    for key, check in spec.items():
        if key not in data or not check(data[key]):
            raise ProtocolError(f"{kind} message with a missing or malformed {key!r}")
    return cast(JsonMessage, obj)  # checked against _REQUIRED above


def _parse_binary(raw: bytes) -> BinaryMessage:
    if len(raw) < 4:
        raise ProtocolError(f"binary frame of {len(raw)} bytes has no event header")
    (event,) = struct.unpack_from(">I", raw, 0)
    if event == PREVIEW_IMAGE:
        if len(raw) < 8:
            raise ProtocolError("preview frame without an image format")
        (fmt,) = struct.unpack_from(">I", raw, 4)
        return PreviewImage(event, _LEGACY_IMAGE_FORMATS.get(fmt, str(fmt)), raw[8:])
    if event == PREVIEW_IMAGE_WITH_METADATA:
        if len(raw) < 8:
            raise ProtocolError("preview frame without a metadata length")
        (size,) = struct.unpack_from(">I", raw, 4)
        if len(raw) < 8 + size:
            raise ProtocolError("preview frame shorter than its metadata length")
        try:
            meta = json.loads(raw[8 : 8 + size])
        except ValueError as exc:
            raise ProtocolError("preview frame metadata is not JSON") from exc
        if not isinstance(meta, dict):
            raise ProtocolError("preview frame metadata is not an object")
        image_type = str(meta.get("image_type") or "image/jpeg")
        image_format = image_type.removeprefix("image/")
        return PreviewImage(event, image_format, raw[8 + size :], cast(PreviewMetadata, meta))
    if event == TEXT:
        if len(raw) < 8:
            raise ProtocolError("text frame without a node id length")
        (size,) = struct.unpack_from(">I", raw, 4)
        if len(raw) < 8 + size:
            raise ProtocolError("text frame shorter than its node id length")
        node_id = raw[8 : 8 + size].decode("utf-8", errors="replace")
        return ProgressText(node_id, raw[8 + size :].decode("utf-8", errors="replace"))
    return UnknownBinary(event, raw[4:])


def encode_binary(message: BinaryMessage) -> bytes:
    """The wire form of a binary message (the inverse of :func:`parse_ws_message`)."""
    if isinstance(message, ProgressText):
        node = message.node_id.encode()
        return struct.pack(">II", TEXT, len(node)) + node + message.text.encode()
    if isinstance(message, PreviewImage):
        if message.event_type == PREVIEW_IMAGE_WITH_METADATA:
            meta = json.dumps(message.metadata or {}).encode()
            return struct.pack(">II", message.event_type, len(meta)) + meta + message.data
        codes = {v: k for k, v in _LEGACY_IMAGE_FORMATS.items()}
        return struct.pack(">II", message.event_type, codes.get(message.image_format, 1)) + (
            message.data
        )
    return struct.pack(">I", message.event_type) + message.payload


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _is_opt_str(v: Any) -> bool:
    return v is None or isinstance(v, str)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _is_list(v: Any) -> bool:
    return isinstance(v, list)


def _is_dict(v: Any) -> bool:
    return isinstance(v, dict)


def _is_opt_dict(v: Any) -> bool:
    return v is None or isinstance(v, dict)


def _is_status(v: Any) -> bool:
    info = v.get("exec_info") if isinstance(v, dict) else None
    return isinstance(info, dict) and _is_int(info.get("queue_remaining"))


# Required keys per known type. Optional keys (timestamp, display_node, sid, ...) are
# not listed: a message missing them is still valid.
_REQUIRED: dict[str, dict[str, Callable[[Any], bool]]] = {
    "status": {"status": _is_status},
    "execution_start": {"prompt_id": _is_str},
    "execution_cached": {"nodes": _is_list, "prompt_id": _is_str},
    "executing": {"node": _is_opt_str},
    "progress": {"value": _is_number, "max": _is_number},
    "progress_state": {"prompt_id": _is_str, "nodes": _is_dict},
    "executed": {"node": _is_str, "output": _is_opt_dict, "prompt_id": _is_str},
    "execution_success": {"prompt_id": _is_str},
    "execution_error": {"prompt_id": _is_str},
    "execution_interrupted": {"prompt_id": _is_str},
    "feature_flags": {},
}


def message_prompt_id(message: WsMessage) -> str | None:
    """The prompt a message belongs to, when the message says so."""
    if isinstance(message, PreviewImage):
        return message.prompt_id
    if isinstance(message, ProgressText | UnknownBinary):
        return None
    if isinstance(message, UnknownMessage):
        data = message.data
        pid = data.get("prompt_id") if isinstance(data, dict) else None
        return pid if isinstance(pid, str) else None
    pid = message["data"].get("prompt_id")
    return pid if isinstance(pid, str) else None


def is_json_message(message: object) -> TypeGuard[JsonMessage]:
    """True for the TypedDict (JSON) messages, so ``message["type"]`` is safe."""
    return isinstance(message, dict)


# --------------------------------------------------------------------------- #
# HTTP payloads
# --------------------------------------------------------------------------- #


class ApiNode(TypedDict):
    """One node of an API-format graph; a list input value is a link [node_id, slot]."""

    class_type: str
    inputs: dict[str, Any]
    _meta: NotRequired[dict[str, Any]]


Graph = Mapping[str, ApiNode | Mapping[str, Any]]


class PromptRequest(TypedDict):
    """Body of POST /prompt."""

    prompt: Graph
    client_id: NotRequired[str]  # routes the per-prompt websocket events
    prompt_id: NotRequired[str]  # a canonical uuid works on every version
    extra_data: NotRequired[dict[str, Any]]
    front: NotRequired[bool]
    number: NotRequired[float]
    partial_execution_targets: NotRequired[list[str]]


class ValidationError(TypedDict):
    type: str  # required_input_missing, value_smaller_than_min, return_type_mismatch, ...
    message: str
    details: str
    extra_info: dict[str, Any]


class NodeError(TypedDict):
    errors: list[ValidationError]
    dependent_outputs: list[str]
    class_type: str


class PromptResponse(TypedDict):
    """POST /prompt 200. Non-empty node_errors: some outputs were dropped, the rest runs."""

    prompt_id: str
    number: int | float  # a priority value, not a queue position
    node_errors: dict[str, NodeError]


class PromptErrorInfo(TypedDict):
    type: str  # invalid_prompt, prompt_no_outputs, prompt_outputs_failed_validation, ...
    message: str
    details: str
    extra_info: dict[str, Any]


class PromptErrorResponse(TypedDict):
    """POST /prompt 400."""

    error: PromptErrorInfo
    node_errors: dict[str, NodeError]


class HistoryStatus(TypedDict):
    status_str: str  # "success" | "error" (an interrupt is an "error" too)
    completed: bool
    messages: list[list[Any]]  # [[event, data], ...]; the last one tells error from interrupt


class NodeMeta(TypedDict, total=False):
    node_id: str
    display_node: str
    parent_node: str | None
    real_node_id: str


class HistoryEntry(TypedDict):
    """One value of GET /history/{prompt_id} (which answers ``{prompt_id: entry}``)."""

    prompt: list[Any]  # [number, prompt_id, graph, extra_data, outputs_to_execute]
    outputs: dict[str, NodeOutput]
    status: NotRequired[HistoryStatus | None]
    meta: NotRequired[dict[str, NodeMeta]]


class QueueResponse(TypedDict):
    """GET /queue. Items are 5-element lists; ``queue_pending`` is in heap order."""

    queue_running: list[list[Any]]
    queue_pending: list[list[Any]]


class SystemInfo(TypedDict, total=False):
    os: str
    ram_total: int
    ram_free: int
    comfyui_version: str  # the best field to gate features on
    required_frontend_version: str
    installed_templates_version: str
    required_templates_version: str
    python_version: str
    pytorch_version: str
    embedded_python: bool
    argv: list[str]


class DeviceInfo(TypedDict, total=False):
    name: str
    type: str
    index: int | None
    vram_total: int
    vram_free: int
    torch_vram_total: int
    torch_vram_free: int


class SystemStats(TypedDict):
    """GET /system_stats."""

    system: SystemInfo
    devices: list[DeviceInfo]


class NodeInfo(TypedDict, total=False):
    """One value of GET /object_info[/{class}]."""

    input: dict[str, Any]
    input_order: dict[str, list[str]]
    is_input_list: bool
    output: list[str]
    output_is_list: list[bool]
    output_name: list[str]
    name: str
    display_name: str
    description: str
    python_module: str
    category: str
    output_node: bool
    deprecated: bool
    experimental: bool
    api_node: bool


class UploadResponse(TypedDict):
    """POST /upload/image. ``name`` may differ from the name sent (``x (1).png``)."""

    name: str
    subfolder: str
    type: str


# --------------------------------------------------------------------------- #
# Parsed forms
# --------------------------------------------------------------------------- #


class QueueItem(NamedTuple):
    number: float  # priority; negative for front=True
    prompt_id: str
    prompt: dict[str, Any]
    extra_data: dict[str, Any]
    outputs_to_execute: list[str]


@dataclass(frozen=True, slots=True)
class Queue:
    """GET /queue, with ``pending`` sorted into execution order."""

    running: list[QueueItem]
    pending: list[QueueItem]

    def __contains__(self, prompt_id: object) -> bool:
        return any(item.prompt_id == prompt_id for item in (*self.running, *self.pending))

    def position(self, prompt_id: str) -> int | None:
        """0 = runs next; None when not pending (running, finished or unknown)."""
        for index, item in enumerate(self.pending):
            if item.prompt_id == prompt_id:
                return index
        return None

    def is_running(self, prompt_id: str) -> bool:
        return any(item.prompt_id == prompt_id for item in self.running)


def parse_queue(raw: Any) -> Queue:
    """Turn a GET /queue body into a :class:`Queue`; ProtocolError if it is malformed."""
    if not isinstance(raw, dict):
        raise ProtocolError("GET /queue did not answer an object")

    def items(key: str) -> list[QueueItem]:
        value = raw.get(key, [])
        if not isinstance(value, list):
            raise ProtocolError(f"GET /queue {key} is not a list")
        out = []
        for item in value:
            if not isinstance(item, list) or len(item) < 2 or not isinstance(item[1], str):
                raise ProtocolError(f"GET /queue {key} item is malformed")
            padded = [*item[:5], *[None] * (5 - min(len(item), 5))]
            out.append(
                QueueItem(
                    number=padded[0],
                    prompt_id=padded[1],
                    prompt=padded[2] or {},
                    extra_data=padded[3] or {},
                    outputs_to_execute=list(padded[4] or []),
                )
            )
        return out

    pending = items("queue_pending")
    pending.sort(key=lambda item: (_sort_number(item.number), item.prompt_id))
    return Queue(running=items("queue_running"), pending=pending)


def _sort_number(value: Any) -> float:
    return float(value) if _is_number(value) else 0.0


@dataclass(frozen=True, slots=True)
class OutputFile:
    """A file a node reported, under whichever ui key (images, gifs, audio, ...)."""

    node_id: str
    kind: str  # the ui key it came under
    filename: str
    subfolder: str
    type: str  # "output" | "temp" | "input"
    animated: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)  # format, ... (never fullpath)


@dataclass(frozen=True, slots=True)
class OutputValue:
    """A non-file ui value a node reported (``text`` strings, 3-D ``result``, ...)."""

    node_id: str
    kind: str
    value: Any


def iter_outputs(outputs: Mapping[str, Any]) -> list[OutputFile | OutputValue]:
    """Every output of every node, of every kind, in node order.

    ``outputs`` maps node id to a ui dict (history ``outputs``). Any list item that is
    an object with ``filename`` becomes an :class:`OutputFile`; every other item
    becomes an :class:`OutputValue` (``animated`` flags are folded into the files).
    """
    found: list[OutputFile | OutputValue] = []
    for node_id, ui in outputs.items():
        if not isinstance(ui, Mapping):
            continue
        flags = ui.get("animated")
        animated = isinstance(flags, list) and any(flag is True for flag in flags)
        for kind, items in ui.items():
            if kind == "animated":
                continue
            for item in items if isinstance(items, list) else [items]:
                if isinstance(item, Mapping) and isinstance(item.get("filename"), str):
                    found.append(
                        OutputFile(
                            node_id=str(node_id),
                            kind=kind,
                            filename=item["filename"],
                            subfolder=str(item.get("subfolder") or ""),
                            type=str(item.get("type") or "output"),
                            animated=animated,
                            extra={
                                k: v
                                for k, v in item.items()
                                if k not in ("filename", "subfolder", "type", "fullpath")
                            },
                        )
                    )
                else:
                    found.append(OutputValue(node_id=str(node_id), kind=kind, value=item))
    return found


def output_files(outputs: Mapping[str, Any]) -> list[OutputFile]:
    return [o for o in iter_outputs(outputs) if isinstance(o, OutputFile)]


HistoryOutcome = Literal["success", "error", "interrupted"]


def history_outcome(entry: HistoryEntry) -> tuple[HistoryOutcome, dict[str, Any]]:
    """How a finished prompt ended, and the data of its terminal message.

    ``status_str`` says "error" for both failures and interrupts; the terminal entry
    in ``status.messages`` tells them apart.
    """
    status = entry.get("status") or None
    messages: Iterable[Any] = status.get("messages", []) if status else []
    terminal: tuple[str, dict[str, Any]] | None = None
    for item in messages:
        if (
            isinstance(item, list | tuple)
            and len(item) == 2
            and item[0] in ("execution_success", "execution_error", "execution_interrupted")
        ):
            terminal = (item[0], item[1] if isinstance(item[1], dict) else {})
    if terminal and terminal[0] == "execution_interrupted":
        return "interrupted", terminal[1]
    if terminal and terminal[0] == "execution_error":
        return "error", terminal[1]
    if status is None or status.get("status_str") == "success":
        return "success", terminal[1] if terminal else {}
    return "error", terminal[1] if terminal else {}
