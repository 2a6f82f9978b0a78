"""POST /prompt validation, a port of ComfyUI's `validate_prompt` / `validate_inputs`.

Kept structurally close to the original because clients depend on its quirks: values are
coerced in place (so "64" and 64.7 become 64 and hit the cache), a broken link raises
inside the *upstream* node's validation and is filed under it with the consumer's input,
and outputs that fail are dropped while the valid ones still run (HTTP 200).
"""

from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass, field
from typing import Any

from comfygraph.emulator.files import Files
from comfygraph.emulator.nodes.base import NodeDef

Validated = dict[str, tuple[bool, list[dict[str, Any]], str]]


@dataclass
class Verdict:
    ok: bool
    error: dict[str, Any] | None = None
    outputs: list[str] = field(default_factory=list)
    node_errors: dict[str, Any] = field(default_factory=dict)


def full_type_name(kind: type) -> str:
    module = kind.__module__
    return kind.__qualname__ if module in (None, "builtins") else f"{module}.{kind.__qualname__}"


def _error(
    kind: str, message: str, details: str = "", extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {"type": kind, "message": message, "details": details, "extra_info": extra or {}}


def _types_match(received: Any, expected: Any) -> bool:
    if isinstance(expected, list):  # a legacy combo fed by a link
        expected = "COMBO"
    if received == expected or "*" in (received, expected):
        return True
    if not isinstance(received, str) or not isinstance(expected, str):
        return False
    return bool(set(received.split(",")) & set(expected.split(",")))


class Validator:
    def __init__(self, prompt: dict[str, Any], registry: dict[str, NodeDef], files: Files) -> None:
        self.prompt = prompt
        self.registry = registry
        self.files = files
        self.validated: Validated = {}

    def inputs(self, unique_id: str) -> tuple[bool, list[dict[str, Any]], str]:
        if unique_id in self.validated:
            return self.validated[unique_id]
        node = self.prompt[unique_id]
        inputs = node["inputs"]
        definition = self.registry[node["class_type"]]
        errors: list[dict[str, Any]] = []
        valid = True
        for name in definition.input_names():
            spec, category = definition.spec(name, self.files) or ([], "optional")
            input_type, extra = spec[0], (spec[1] if len(spec) > 1 else {})
            info = [input_type, extra]
            if name not in inputs:
                if category == "required":
                    errors.append(
                        _error(
                            "required_input_missing",
                            "Required input is missing",
                            name,
                            {"input_name": name},
                        )
                    )
                continue
            value = inputs[name]
            if isinstance(value, list):
                if len(value) != 2:
                    errors.append(
                        _error(
                            "bad_linked_input",
                            "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                            name,
                            {"input_name": name, "input_config": info, "received_value": value},
                        )
                    )
                    continue
                source_id = value[0]
                source_type = self.prompt[source_id]["class_type"]
                received = self.registry[source_type].outputs[value[1]]
                if not _types_match(received, input_type):
                    details = f"{name}, received_type({received}) mismatch input_type({input_type})"
                    extra_info = {
                        "input_name": name,
                        "input_config": info,
                        "received_type": received,
                        "linked_node": value,
                    }
                    errors.append(
                        _error(
                            "return_type_mismatch",
                            "Return type mismatch between linked nodes",
                            details,
                            extra_info,
                        )
                    )
                    continue
                try:
                    if self.inputs(source_id)[0] is False:
                        valid = False
                        continue
                except Exception as ex:
                    valid = False
                    kind, _, tb = sys.exc_info()
                    assert kind is not None
                    extra_info = {
                        "input_name": name,
                        "input_config": info,
                        "exception_message": str(ex),
                        "exception_type": full_type_name(kind),
                        "traceback": traceback.format_tb(tb),
                        "linked_node": value,
                    }
                    reason = _error(
                        "exception_during_inner_validation",
                        "Exception when validating inner node",
                        str(ex),
                        extra_info,
                    )
                    self.validated[source_id] = (False, [reason], source_id)
                    continue
            else:
                problem = self._literal(inputs, name, value, input_type, extra, info, definition)
                if problem is not None:
                    errors.append(problem)
        if definition.validate is not None:
            for name, message in definition.validate(inputs, self.files).items():
                errors.append(
                    _error(
                        "custom_validation_failed",
                        "Custom validation failed for node",
                        f"{name} - {message}",
                        {"input_name": name},
                    )
                )
        result = (not errors and valid, errors, unique_id)
        self.validated[unique_id] = result
        return result

    def _literal(
        self,
        inputs: dict[str, Any],
        name: str,
        value: Any,
        input_type: Any,
        extra: dict[str, Any],
        info: list[Any],
        definition: NodeDef,
    ) -> dict[str, Any] | None:
        try:
            if isinstance(value, dict) and "__value__" in value:
                value = inputs[name] = value["__value__"]
            converter = {"INT": int, "FLOAT": float, "STRING": str, "BOOLEAN": bool}.get(
                str(input_type)
            )
            if converter is not None:
                value = inputs[name] = converter(value)
        except Exception as ex:
            extra_info = {
                "input_name": name,
                "input_config": info,
                "received_value": value,
                "exception_message": str(ex),
            }
            return _error(
                "invalid_input_type",
                f"Failed to convert an input value to a {input_type} value",
                f"{name}, {value}, {ex}",
                extra_info,
            )
        if name in definition.custom_validated:
            return None
        received = {"input_name": name, "input_config": info, "received_value": value}
        if "min" in extra and value < extra["min"]:
            return _error(
                "value_smaller_than_min",
                f"Value {value} smaller than min of {extra['min']}",
                name,
                received,
            )
        if "max" in extra and value > extra["max"]:
            return _error(
                "value_bigger_than_max",
                f"Value {value} bigger than max of {extra['max']}",
                name,
                received,
            )
        options = (
            input_type
            if isinstance(input_type, list)
            else extra.get("options")
            if input_type == "COMBO"
            else None
        )
        if options is not None and value not in options:
            listed, config = (
                (f"(list of length {len(options)})", None)
                if len(options) > 20
                else (str(options), info)
            )
            return _error(
                "value_not_in_list",
                "Value not in list",
                f"{name}: '{value}' not in {listed}",
                {"input_name": name, "input_config": config, "received_value": value},
            )
        return None


def output_nodes(
    prompt: dict[str, Any], registry: dict[str, NodeDef], targets: list[str] | None
) -> list[str]:
    """Output nodes to run. ComfyUI collects them in a set (random order); the emulator
    sorts ids descending, which reproduces the execution orders of the recorded traces."""
    found = {
        node_id
        for node_id, node in prompt.items()
        if registry[node["class_type"]].output_node and (targets is None or node_id in targets)
    }
    return sorted(found, reverse=True)


def validate_prompt(
    prompt: dict[str, Any],
    registry: dict[str, NodeDef],
    files: Files,
    targets: list[str] | None = None,
) -> Verdict:
    for node_id, node in prompt.items():
        if "class_type" not in node:
            message = "Cannot execute because a node is missing the class_type property."
            return Verdict(False, _error("invalid_prompt", message, f"Node ID '#{node_id}'"))
        if node["class_type"] not in registry:
            message = f"Cannot execute because node {node['class_type']} does not exist."
            return Verdict(False, _error("invalid_prompt", message, f"Node ID '#{node_id}'"))
    outputs = output_nodes(prompt, registry, targets)
    if not outputs:
        return Verdict(False, _error("prompt_no_outputs", "Prompt has no outputs"))

    validator = Validator(prompt, registry, files)
    good: list[str] = []
    failures: list[tuple[str, list[dict[str, Any]]]] = []
    node_errors: dict[str, Any] = {}
    for output in outputs:
        try:
            valid, reasons, _ = validator.inputs(output)
        except Exception as ex:
            kind, _, tb = sys.exc_info()
            assert kind is not None
            extra_info = {
                "exception_type": full_type_name(kind),
                "traceback": traceback.format_tb(tb),
            }
            valid, reasons = (
                False,
                [
                    _error(
                        "exception_during_validation",
                        "Exception when validating node",
                        str(ex),
                        extra_info,
                    )
                ],
            )
            validator.validated[output] = (False, reasons, output)
        if valid is True:
            good.append(output)
            continue
        failures.append((output, reasons))
        # As in ComfyUI: every node validated so far with reasons of its own gets this
        # output added to its dependent_outputs; downstream nodes with none are not listed.
        for node_id, (node_valid, node_reasons, _) in validator.validated.items():
            if node_valid is not True and node_reasons:
                if node_id not in node_errors:
                    node_errors[node_id] = {
                        "errors": node_reasons,
                        "dependent_outputs": [],
                        "class_type": prompt[node_id]["class_type"],
                    }
                node_errors[node_id]["dependent_outputs"].append(output)
    if not good:
        details = "\n".join(
            f"{e['message']}: {e['details']}" for _, reasons in failures for e in reasons
        )
        error = _error(
            "prompt_outputs_failed_validation", "Prompt outputs failed validation", details
        )
        return Verdict(False, error, [], node_errors)
    return Verdict(True, None, good, node_errors)
