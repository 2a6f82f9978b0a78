"""Workflow templates: one JSON file per workflow, as CONTRACT.md "Workflow template files".

    templates = load_templates(extra_dir)            # built-ins + WORKFLOWS_DIR/*.json
    clean, errors = validate(template, values, is_allowed_file=storage.accepts)
    graph = bind(template, clean, {"image": "upload_123.png"})   # then POST /prompt

Error codes of `validate` (each with path ["parameters", name]):
  UNKNOWN_PARAMETER  a name the template does not declare
  MISSING_PARAMETER  a required parameter left out (or null)
  INVALID_PARAMETER  wrong type, out of range, not a choice, unacceptable file URL ...

Types: INT takes ints only (no floats, bools or strings); FLOAT takes ints or floats;
BOOLEAN takes true/false only; STRING takes strings (min/max bound its length, `pattern`
is a full-match regex); SEED takes an int in [min or 0, max or 2**31-1] and, when left
empty, gets a random one that is returned in the clean values (so the job can record it);
IMAGE/AUDIO/VIDEO take a URL string that `is_allowed_file` must accept, or with
`"list": true` a list of them (`minItems`/`maxItems`), bound as one newline-joined string.
An optional file parameter left out removes its bound nodes, and every link to them,
from the graph (e.g. compose-ad's music); other optional parameters must have a default.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PARAMETER_TYPES = frozenset(
    {"STRING", "INT", "FLOAT", "BOOLEAN", "SEED", "IMAGE", "AUDIO", "VIDEO"}
)
FILE_TYPES = frozenset({"IMAGE", "AUDIO", "VIDEO"})
OUTPUT_TYPES = frozenset({"VIDEO", "IMAGE", "TEXT", "AUDIO"})
SEED_MAX = 2**31 - 1  # fits a GraphQL Int, so the recorded seed can be shown and replayed
BUILTIN_DIR = Path(__file__).with_name("workflows")

_TEMPLATE_KEYS = {
    "name",
    "retentionDays",
    "outputType",
    "description",
    "graph",
    "parameters",
    "outputs",
    "requeueLost",
    "estimatedSeconds",
    "stallSeconds",
}
_PARAMETER_KEYS = {
    "name", "type", "required", "default", "description", "min", "max", "choices", "bind",
    "list", "minItems", "maxItems", "pattern",
}  # fmt: skip
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_PARAMETER_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")

FileCheck = Callable[[str], bool]


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    bind: tuple[tuple[str, str], ...]
    required: bool = False
    default: Any = None
    description: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None
    is_list: bool = False
    min_items: int = 1
    max_items: int | None = None
    pattern: str | None = None

    @property
    def is_file(self) -> bool:
        return self.type in FILE_TYPES


@dataclass(frozen=True)
class WorkflowTemplate:
    name: str
    output_type: str
    description: str
    graph: Mapping[str, Any]  # read-only: `bind` works on a deep copy
    parameters: tuple[Parameter, ...]
    outputs: tuple[str, ...]  # output node ids, whose files are the job's results
    source: str
    # A job its worker lost (restart, crash) is queued once more; false fails it instead
    # (for workflows whose side effects must not run twice). File key "requeueLost".
    requeue_lost: bool = True
    # GPU seconds one run takes (file key "estimatedSeconds"): what cost estimates go by
    # until the workflow has a history of its own.
    estimated_seconds: float | None = None
    # No change on the worker this long and the job is interrupted (STALL_SECONDS when
    # None). File key "stallSeconds".
    stall_seconds: float | None = None
    # 0 for built-in and WORKFLOWS_DIR files; 1, 2, ... for versions published at runtime
    # (publishWorkflow, `comfygraph workflows add`). Each job records the one it ran.
    version: int = 0
    # Days a finished job's files are kept (RETENTION_DAYS when None). "retentionDays".
    retention_days: int | None = None

    def parameter(self, name: str) -> Parameter | None:
        return next((p for p in self.parameters if p.name == name), None)


@dataclass(frozen=True)
class ParameterError:
    code: str
    message: str
    path: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "path": list(self.path)}


class TemplateError(ValueError):
    """A template file that cannot be used; `source` names the file."""

    def __init__(self, source: str, reason: str, path: tuple[str, ...] = ()) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason
        self.path = path  # where in the template, e.g. ("parameters", "0", "bind")


@dataclass(frozen=True)
class TemplateSet:
    """The current version of each workflow (`templates`), every version jobs may name
    (`versions`), and the names hidden from new submissions (`deprecated`). One object
    per app, shared by the runtime, submit and sessions: `install` changes it in place."""

    templates: dict[str, WorkflowTemplate]
    problems: tuple[TemplateError, ...]  # files skipped, each naming its file
    versions: dict[tuple[str, int], WorkflowTemplate] = field(default_factory=dict)
    deprecated: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        for template in self.templates.values():
            self.versions.setdefault((template.name, template.version), template)

    def get(self, name: str, version: int | None = None) -> WorkflowTemplate | None:
        """The current version, or the given one (a job's); an unknown version is the
        current one (a row from before versions were recorded)."""
        if version is not None and (name, version) in self.versions:
            return self.versions[(name, version)]
        return self.templates.get(name)

    def install(self, published: Sequence[WorkflowTemplate], deprecated: set[str]) -> None:
        """Replace the published versions and deprecations; file templates stay as
        version 0, and a workflow's highest version is its current one."""
        versions = {key: t for key, t in self.versions.items() if t.version == 0}
        versions.update({(t.name, t.version): t for t in published})
        current = {name: t for (name, _), t in sorted(versions.items())}
        # No await in between: a coroutine sees the old set or the new, never a mix.
        self.versions.clear()
        self.versions.update(versions)
        self.templates.clear()
        self.templates.update(current)
        self.deprecated.clear()
        self.deprecated.update(deprecated)


# ---------------------------------------------------------------- loading


def load_templates(extra_dir: Path | str | None = None) -> TemplateSet:
    """Built-in templates plus every `*.json` in `extra_dir`. A bad file, or one whose
    name is already taken (built-ins win), is logged by name and skipped whole."""
    templates: dict[str, WorkflowTemplate] = {}
    problems: list[TemplateError] = []
    folders = [BUILTIN_DIR] + ([Path(extra_dir)] if extra_dir is not None else [])
    for folder in folders:
        if not folder.is_dir():
            problems.append(TemplateError(str(folder), "not a directory"))
            continue
        for path in sorted(folder.glob("*.json")):
            try:
                template = load_template_file(path)
                if template.name in templates:
                    other = templates[template.name].source
                    raise TemplateError(
                        str(path), f"duplicate workflow name {template.name!r} (also in {other})"
                    )
            except TemplateError as exc:
                log.warning("skipping workflow template %s", exc)
                problems.append(exc)
                continue
            templates[template.name] = template
    return TemplateSet(templates, tuple(problems))


def load_template_file(path: Path) -> WorkflowTemplate:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TemplateError(str(path), f"unreadable JSON: {exc}") from exc
    return parse_template(data, source=str(path))


def parse_template(data: Any, *, source: str) -> WorkflowTemplate:
    """Check a template's whole structure; raises TemplateError with the first problem."""

    def fail(reason: str, *path: str) -> TemplateError:
        return TemplateError(source, reason, path)

    if not isinstance(data, dict):
        raise fail("a template must be a JSON object")
    unknown = set(data) - _TEMPLATE_KEYS
    if unknown:
        raise fail(f"unknown keys {sorted(unknown)}", sorted(unknown)[0])
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise fail("name must be lower-case letters, digits, '-' or '_'", "name")
    if data.get("outputType") not in OUTPUT_TYPES:
        raise fail(f"outputType must be one of {sorted(OUTPUT_TYPES)}", "outputType")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise fail("description must be a string", "description")
    graph = data.get("graph")
    if not isinstance(graph, dict) or not graph:
        raise fail("graph must be a non-empty object of nodes", "graph")
    for node_id, node in graph.items():
        if not isinstance(node, dict) or not isinstance(node.get("class_type"), str):
            raise fail(f"graph node {node_id} needs a class_type", "graph", str(node_id))
        if not isinstance(node.get("inputs"), dict):
            raise fail(f"graph node {node_id} needs an inputs object", "graph", str(node_id))
    outputs = data.get("outputs")
    if not isinstance(outputs, list) or not outputs or not all(o in graph for o in outputs):
        raise fail("outputs must be a non-empty list of graph node ids", "outputs")
    raw_parameters = data.get("parameters", [])
    if not isinstance(raw_parameters, list):
        raise fail("parameters must be a list", "parameters")
    parameters = tuple(
        _parse_parameter(p, graph, lambda reason, *at, i=i: fail(reason, "parameters", str(i), *at))
        for i, p in enumerate(raw_parameters)
    )
    names = [p.name for p in parameters]
    if len(set(names)) != len(names):
        raise fail("parameter names must be unique", "parameters")
    targets = [target for p in parameters for target in p.bind]
    if len(set(targets)) != len(targets):
        raise fail("two parameters bind the same node input", "parameters")
    requeue = data.get("requeueLost", True)
    if not isinstance(requeue, bool):
        raise fail("requeueLost must be true or false", "requeueLost")
    seconds = data.get("estimatedSeconds")
    if seconds is not None and (
        isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0
    ):
        raise fail("estimatedSeconds must be a positive number", "estimatedSeconds")
    stall = data.get("stallSeconds")
    if stall is not None and (
        isinstance(stall, bool) or not isinstance(stall, int | float) or stall <= 0
    ):
        raise fail("stallSeconds must be a positive number of seconds", "stallSeconds")
    retention = data.get("retentionDays")
    if retention is not None and (
        isinstance(retention, bool) or not isinstance(retention, int) or retention <= 0
    ):
        raise fail("retentionDays must be a positive whole number of days", "retentionDays")
    return WorkflowTemplate(
        name,
        data["outputType"],
        description,
        graph,
        parameters,
        tuple(outputs),
        source,
        requeue_lost=requeue,
        estimated_seconds=None if seconds is None else float(seconds),
        stall_seconds=None if stall is None else float(stall),
        retention_days=retention,
    )


def _parse_parameter(
    raw: Any, graph: dict[str, Any], fail: Callable[..., TemplateError]
) -> Parameter:
    if not isinstance(raw, dict):
        raise fail("each parameter must be an object")
    name = raw.get("name")
    if not isinstance(name, str) or not _PARAMETER_NAME.match(name):
        raise fail(f"bad parameter name {name!r}", "name")
    unknown = set(raw) - _PARAMETER_KEYS
    if unknown:
        raise fail(f"parameter {name}: unknown keys {sorted(unknown)}")
    kind = raw.get("type")
    if kind not in PARAMETER_TYPES:
        raise fail(f"parameter {name}: type must be one of {sorted(PARAMETER_TYPES)}", "type")
    bind = raw.get("bind")
    pairs = (
        [bind] if isinstance(bind, list) and len(bind) == 2 and isinstance(bind[0], str) else bind
    )
    if not isinstance(pairs, list) or not pairs:
        raise fail(f"parameter {name}: bind must be [node, input] or a list of them")
    for pair in pairs:
        if not (
            isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)
        ):
            raise fail(f"parameter {name}: bind must be [node, input] or a list of them", "bind")
        if pair[0] not in graph:
            raise fail(f"parameter {name}: binds to missing node {pair[0]}", "bind")
    for key in ("min", "max"):
        value = raw.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise fail(f"parameter {name}: {key} must be a number", key)
    choices = raw.get("choices")
    if choices is not None and (not isinstance(choices, list) or not choices):
        raise fail(f"parameter {name}: choices must be a non-empty list", "choices")
    is_list = raw.get("list", False)
    if not isinstance(is_list, bool) or (is_list and kind not in FILE_TYPES):
        raise fail(f"parameter {name}: list is a boolean, for file parameters only", "list")
    parameter = Parameter(
        name=name,
        type=kind,
        bind=tuple((a, b) for a, b in pairs),
        required=bool(raw.get("required", False)),
        default=raw.get("default"),
        description=str(raw.get("description", "")),
        min=raw.get("min"),
        max=raw.get("max"),
        choices=tuple(choices) if choices is not None else None,
        is_list=is_list,
        min_items=int(raw.get("minItems", 1)),
        max_items=raw.get("maxItems"),
        pattern=raw.get("pattern"),
    )
    if parameter.min is not None and parameter.max is not None and parameter.min > parameter.max:
        raise fail(f"parameter {name}: min is above max", "min")
    if parameter.pattern is not None:
        try:
            re.compile(parameter.pattern)
        except (re.error, TypeError) as exc:
            raise fail(f"parameter {name}: bad pattern ({exc})", "pattern") from exc
    if parameter.default is not None:
        if parameter.required or parameter.is_file:
            raise fail(f"parameter {name}: required and file parameters take no default", "default")
        if _check(parameter, parameter.default, None) is not None:
            raise fail(
                f"parameter {name}: default {parameter.default!r} is not a valid value", "default"
            )
    elif not parameter.required and not parameter.is_file and kind != "SEED":
        raise fail(f"parameter {name}: an optional parameter needs a default", "default")
    return parameter


# ---------------------------------------------------------------- validation


def validate(
    template: WorkflowTemplate,
    values: Mapping[str, Any],
    *,
    is_allowed_file: FileCheck | None = None,
    rng: random.Random | None = None,
) -> tuple[dict[str, Any], list[ParameterError]]:
    """Clean values (defaults and random seeds filled in) and one error per bad field.

    `is_allowed_file(url)` decides whether a file URL may be used (a stored upload, an
    allowed host); without it any non-empty string is accepted.
    """
    clean: dict[str, Any] = {}
    errors: list[ParameterError] = []
    declared = {p.name for p in template.parameters}
    unknown = [name for name in values if name not in declared]
    for name in unknown[:MAX_LISTED_ERRORS]:
        errors.append(
            _error("UNKNOWN_PARAMETER", str(name)[:100],
                   f"{template.name} has no parameter {str(name)[:100]!r}")
        )  # fmt: skip
    if len(unknown) > MAX_LISTED_ERRORS:
        errors.append(
            ParameterError(
                "UNKNOWN_PARAMETER",
                f"{len(unknown) - MAX_LISTED_ERRORS} more unknown parameters not listed "
                f"({len(unknown)} in all)",
                ("parameters",),
            )
        )
    for parameter in template.parameters:
        value = values.get(parameter.name)
        if value is None or (parameter.type == "SEED" and value == ""):
            if parameter.required and parameter.type != "SEED":
                errors.append(
                    _error("MISSING_PARAMETER", parameter.name, f"{parameter.name} is required")
                )
            elif parameter.type == "SEED":
                low = int(parameter.min) if parameter.min is not None else 0
                high = int(parameter.max) if parameter.max is not None else SEED_MAX
                clean[parameter.name] = (rng or random.SystemRandom()).randint(low, high)
            elif parameter.default is not None:
                clean[parameter.name] = copy.deepcopy(parameter.default)
            continue
        problem = _check(parameter, value, is_allowed_file)
        if problem is not None:
            errors.append(_error("INVALID_PARAMETER", parameter.name, problem))
        else:
            clean[parameter.name] = float(value) if parameter.type == "FLOAT" else value
    return clean, errors


#: unknown parameters named one by one; the rest are counted in one more error
MAX_LISTED_ERRORS = 20


def _error(code: str, name: str, message: str) -> ParameterError:
    return ParameterError(code, message, ("parameters", name))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check(parameter: Parameter, value: Any, is_allowed_file: FileCheck | None) -> str | None:
    """Why `value` is not acceptable for `parameter`, or None."""
    name, kind = parameter.name, parameter.type
    if parameter.is_file:
        return _check_files(parameter, value, is_allowed_file)
    if kind in ("INT", "SEED") and not _is_int(value):
        return f"{name} must be an integer"
    if kind == "FLOAT" and (
        isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
    ):
        return f"{name} must be a number"
    if kind == "BOOLEAN" and not isinstance(value, bool):
        return f"{name} must be true or false"
    if kind == "STRING" and not isinstance(value, str):
        return f"{name} must be a string"
    if parameter.choices is not None and value not in parameter.choices:
        return f"{name} must be one of {', '.join(map(str, parameter.choices))}"
    measure = len(value) if kind == "STRING" else value
    unit = " characters" if kind == "STRING" else ""
    low = parameter.min if parameter.min is not None else (0 if kind == "SEED" else None)
    high = parameter.max if parameter.max is not None else (SEED_MAX if kind == "SEED" else None)
    if low is not None and measure < low:
        return f"{name} must be at least {_number(low)}{unit} (got {_number(measure)})"
    if high is not None and measure > high:
        return f"{name} must be at most {_number(high)}{unit} (got {_number(measure)})"
    if parameter.pattern is not None and not re.fullmatch(parameter.pattern, value):
        return f"{name} does not match {parameter.pattern}"
    return None


def _check_files(parameter: Parameter, value: Any, is_allowed_file: FileCheck | None) -> str | None:
    name = parameter.name
    urls = value if parameter.is_list else [value]
    if parameter.is_list and not isinstance(value, list):
        return f"{name} must be a list of file URLs"
    if parameter.is_list and len(urls) < parameter.min_items:
        return f"{name} needs at least {parameter.min_items} files"
    if parameter.is_list and parameter.max_items is not None and len(urls) > parameter.max_items:
        return f"{name} takes at most {parameter.max_items} files"
    for url in urls:
        if not isinstance(url, str) or not url.strip():
            return f"{name} must be the URL of an uploaded {parameter.type.lower()} file"
        shown = url if len(url) <= 200 else url[:200] + "..."
        if len(url) > MAX_FILE_URL or (
            is_allowed_file is not None and not _allowed(is_allowed_file, url)
        ):
            return f"{name}: {shown!r} is not an uploaded file or an allowed URL"
    return None


#: no stored file has a longer URL; a longer one is refused before any path is built
MAX_FILE_URL = 2048


def _allowed(is_allowed_file: FileCheck, url: str) -> bool:
    # A URL that makes the check itself fail (a path too long for the OS, a symlink loop)
    # is one that is not an acceptable file: the client hears INVALID_PARAMETER.
    try:
        return is_allowed_file(url)
    except (OSError, ValueError, RuntimeError):
        return False


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


# ---------------------------------------------------------------- binding


def bind(
    template: WorkflowTemplate,
    clean_values: Mapping[str, Any],
    file_names: Mapping[str, str | Sequence[str]],
) -> dict[str, Any]:
    """The API-format graph with every value in place (a deep copy of the template's).

    File parameters are bound to `file_names[name]`, the worker-side name(s) their
    upload got (a list, in order, for a list parameter).
    """
    graph = copy.deepcopy(dict(template.graph))
    dropped: set[str] = set()
    for parameter in template.parameters:
        if parameter.name not in clean_values:
            if parameter.is_file:
                dropped.update(node for node, _ in parameter.bind)
            continue
        value = clean_values[parameter.name]
        if parameter.is_file:
            if parameter.name not in file_names:
                raise KeyError(f"no worker file name for parameter {parameter.name}")
            names = file_names[parameter.name]
            value = "\n".join(names) if parameter.is_list and not isinstance(names, str) else names
        for node_id, input_name in parameter.bind:
            graph[node_id]["inputs"][input_name] = copy.deepcopy(value)
    for node_id in dropped:
        graph.pop(node_id, None)
    for node in graph.values():
        inputs = node["inputs"]
        for input_name in [k for k, v in inputs.items() if _links_to(v, dropped)]:
            del inputs[input_name]
    return graph


def _links_to(value: Any, nodes: set[str]) -> bool:
    return isinstance(value, list) and len(value) == 2 and str(value[0]) in nodes
