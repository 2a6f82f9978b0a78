"""Runs one queued prompt and emits ComfyUI 0.8.0's message sequence for it.

execution_start, execution_cached, then per node progress_state(running), executing,
[progress ...], [executed], progress_state(finished); then exactly one of
execution_success / execution_error / execution_interrupted. Per-prompt messages go to
the prompt's client_id only (and are not sent without one), except progress,
progress_state, previews and execution_interrupted, which are broadcast then.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

from PIL import Image

from comfygraph.emulator.cache import Entry, OutputCache
from comfygraph.emulator.execution_list import ExecutionList
from comfygraph.emulator.faults import Faults, exception_class
from comfygraph.emulator.files import Files
from comfygraph.emulator.hub import Hub
from comfygraph.emulator.nodes.base import NodeDef, Ui
from comfygraph.emulator.progress import ProgressReporter
from comfygraph.emulator.validation import full_type_name

T = TypeVar("T")


class Interrupted(Exception):
    """comfy.model_management.InterruptProcessingException."""


class InterruptFlag:
    """ComfyUI's global interrupt flag: set by /interrupt, reset when read."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def set(self) -> None:
        self.event.set()

    def clear(self) -> None:
        self.event.clear()

    def raise_if_set(self) -> None:
        if self.event.is_set():
            self.event.clear()
            raise Interrupted("Processing interrupted")


class Executor:
    def __init__(
        self,
        *,
        hub: Hub,
        cache: OutputCache,
        registry: dict[str, NodeDef],
        files: Files,
        faults: Faults,
    ) -> None:
        self.hub = hub
        self.cache = cache
        self.registry = registry
        self.files = files
        self.faults = faults
        self.interrupt = InterruptFlag()
        self.client_id: str | None = None
        self.last_node_id: str | None = None

    async def execute(self, item: list[Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Run `[number, prompt_id, prompt, extra_data, outputs]`; (status, history result)."""
        _, prompt_id, prompt, extra_data, outputs = item
        self.client_id = extra_data.get("client_id")
        run = PromptRun(self, prompt_id, prompt, extra_data)
        try:
            success = await run.execute(outputs)
        finally:
            self.last_node_id = None
        status = {
            "status_str": "success" if success else "error",
            "completed": success,
            "messages": run.messages,
        }
        meta = {
            n: {"node_id": n, "display_node": n, "parent_node": None, "real_node_id": n}
            for n in run.ui_outputs
        }
        return status, {"outputs": dict(run.ui_outputs), "meta": meta}


class PromptRun:
    def __init__(
        self, executor: Executor, prompt_id: str, prompt: dict[str, Any], extra_data: dict[str, Any]
    ) -> None:
        self.executor = executor
        self.prompt_id = prompt_id
        self.prompt = prompt
        self.client_id: str | None = extra_data.get("client_id")
        # What SaveImage embeds in every PNG: the API-format graph as "prompt", and each
        # extra_data.extra_pnginfo entry (the UI's "workflow") under its own key.
        extra = extra_data.get("extra_pnginfo")
        self.metadata: dict[str, str] = {"prompt": json.dumps(prompt)}
        if isinstance(extra, dict):
            self.metadata.update({str(k): json.dumps(v) for k, v in extra.items()})
        self.messages: list[list[Any]] = []
        self.executed: list[str] = []
        self.ui_outputs: dict[str, Ui] = {}
        self.values: dict[str, tuple[Any, ...]] = {}
        previews = extra_data.get("preview_method") != "none"
        self.progress = ProgressReporter(executor.hub, prompt_id, self.client_id, previews)

    def add_message(self, event: str, data: dict[str, Any], *, broadcast: bool) -> None:
        data = {**data, "timestamp": int(time.time() * 1000)}
        self.messages.append([event, data])
        if self.client_id is not None or broadcast:
            self.executor.hub.send(event, data, self.client_id)

    def definition(self, node_id: str) -> NodeDef:
        return self.executor.registry[self.prompt[node_id]["class_type"]]

    async def execute(self, outputs: list[str]) -> bool:
        self.executor.interrupt.clear()
        self.add_message("execution_start", {"prompt_id": self.prompt_id}, broadcast=False)
        # Off the loop: signatures hash every loaded input file (IS_CHANGED).
        await asyncio.to_thread(
            self.executor.cache.set_prompt, self.prompt, self.executor.registry, self.executor.files
        )
        cached = [n for n in self.prompt if self.executor.cache.get(n) is not None]
        self.add_message(
            "execution_cached", {"nodes": cached, "prompt_id": self.prompt_id}, broadcast=False
        )
        order = ExecutionList(
            self.prompt,
            is_output=lambda n: self.definition(n).output_node,
            is_cached=lambda n: self.executor.cache.get(n) is not None,
        )
        for output in outputs:
            order.add(output)
        while not order.empty():
            node_id = order.next()
            if not await self.run_node(node_id):
                return False
            order.complete(node_id)
        self.add_message("execution_success", {"prompt_id": self.prompt_id}, broadcast=False)
        return True

    def send(self, event: str, data: dict[str, Any]) -> None:
        if self.client_id is not None:
            self.executor.hub.send(event, data, self.client_id)

    async def run_node(self, node_id: str) -> bool:
        definition = self.definition(node_id)
        cached = self.executor.cache.get(node_id)
        if cached is not None:  # only an output node can be both cached and scheduled
            self.send(
                "executed",
                {
                    "node": node_id,
                    "display_node": node_id,
                    "output": cached.ui,
                    "prompt_id": self.prompt_id,
                },
            )
            if cached.ui:
                self.ui_outputs[node_id] = cached.ui
            self.values[node_id] = cached.outputs
            self.progress.finish(node_id)
            return True
        self.progress.start(node_id)
        inputs = self.inputs_of(node_id, definition)
        if self.client_id is not None:
            self.executor.last_node_id = node_id
        self.send(
            "executing", {"node": node_id, "display_node": node_id, "prompt_id": self.prompt_id}
        )
        try:
            self.executor.interrupt.raise_if_set()  # nodes.before_node_execution
            await self.inject_faults(definition, node_id)
            values, ui = await definition.run(NodeRun(self, node_id), inputs)
        except Interrupted:
            self.fail_interrupted(node_id)
            return False
        except Exception as ex:
            self.fail(node_id, ex, inputs)
            return False
        if ui:
            self.ui_outputs[node_id] = ui
            self.send(
                "executed",
                {
                    "node": node_id,
                    "display_node": node_id,
                    "output": ui,
                    "prompt_id": self.prompt_id,
                },
            )
        self.executor.cache.set(node_id, Entry(values, ui))
        self.values[node_id] = values
        self.progress.finish(node_id)
        self.executed.append(node_id)
        return True

    def inputs_of(self, node_id: str, definition: NodeDef) -> dict[str, Any]:
        raw = self.prompt[node_id]["inputs"]
        resolved: dict[str, Any] = {}
        for name in definition.input_names():
            if name not in raw:
                continue
            value = raw[name]
            if isinstance(value, list) and len(value) == 2:
                source = str(value[0])
                produced = self.values.get(source)
                if produced is None:
                    entry = self.executor.cache.get(source)
                    produced = entry.outputs if entry else ()
                value = produced[value[1]]
            resolved[name] = value
        return resolved

    async def inject_faults(self, definition: NodeDef, node_id: str) -> None:
        rule = self.executor.faults.take(definition.class_type, node_id)
        if rule is not None and rule.action == "stall":
            await self.executor.faults.stall(node_id, self.executor.interrupt.event)
        elif rule is not None:
            raise exception_class(rule.exception_type)(rule.message)
        if definition.simulated and self.executor.faults.random_failure():
            raise RuntimeError(
                f"Emulated model failure (fail_rate={self.executor.faults.fail_rate})"
            )

    def fail_interrupted(self, node_id: str) -> None:
        data = {
            "prompt_id": self.prompt_id,
            "node_id": node_id,
            "node_type": self.prompt[node_id]["class_type"],
            "executed": list(self.executed),
        }
        self.add_message("execution_interrupted", data, broadcast=True)

    def fail(self, node_id: str, ex: Exception, inputs: dict[str, Any]) -> None:
        _, _, tb = sys.exc_info()
        data = {
            "prompt_id": self.prompt_id,
            "node_id": node_id,
            "node_type": self.prompt[node_id]["class_type"],
            "executed": list(self.executed),
            "exception_message": f"{ex}\n",
            "exception_type": full_type_name(type(ex)),
            "traceback": traceback.format_tb(tb),
            "current_inputs": {name: [_shown(value)] for name, value in inputs.items()},
            "current_outputs": list(self.prompt),
        }
        self.add_message("execution_error", data, broadcast=False)


def _shown(value: Any) -> Any:
    """ComfyUI's format_value: primitives verbatim, anything else (tensors) as str()."""
    if value is None or isinstance(value, (int, float, bool, str)):
        return value
    return str(value)[:2000]  # a real tensor repr can be megabytes


class NodeRun:
    """The NodeContext a node gets while it runs."""

    def __init__(self, run: PromptRun, node_id: str) -> None:
        self._run = run
        self.node_id = node_id
        self.prompt_id = run.prompt_id
        self.files = run.executor.files
        self.metadata = run.metadata

    async def work(self, seconds: float) -> None:
        await asyncio.sleep(self._run.executor.faults.seconds(seconds))

    async def progress(self, value: int, total: int, preview: Image.Image | None = None) -> None:
        self._run.executor.interrupt.raise_if_set()  # the ProgressBar hook checks first
        self._run.progress.tick(self.node_id, value, total, preview)

    async def offload(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)

    def send_text(self, text: str) -> None:
        self._run.executor.hub.send_text_frame(self.node_id, text)

    async def load_model(self, class_type: str, name: str) -> None:
        await self._run.executor.faults.load_model(class_type, name)
