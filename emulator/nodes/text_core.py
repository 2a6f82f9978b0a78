"""String, number and text-output nodes: core ones plus two common custom ones.

`SimpleMath+` is ComfyUI_essentials' expression node (evaluated here with a small AST
walker, never `eval`); `SaveText` is the text counterpart of SaveImage: it writes
`prefix_00001_.txt` and reports `{"text": [...], "files": [{filename, subfolder, type}]}`.
"""

from __future__ import annotations

import ast
import math
import operator
import re
import sys
from collections.abc import Callable
from typing import Any

from comfygraph.emulator.nodes.base import (
    BOOLEAN,
    FLOAT,
    INT,
    LINK,
    STRING,
    NodeContext,
    NodeDef,
    NodeResult,
    done,
)

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "min": min,
    "max": max,
    "round": round,
    "abs": abs,
    "int": int,
    "float": float,
    "floor": math.floor,
    "ceil": math.ceil,
}


def evaluate(expression: str, names: dict[str, Any]) -> float:
    """Arithmetic over numbers, a/b/c and a few functions; anything else is an error."""

    def walk(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, ast.Name) and node.id in names:
            return names[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            if isinstance(node.op, ast.Pow) and abs(walk(node.right)) > 64:
                raise ValueError("exponent too large")
            return _BINARY[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = walk(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _FUNCTIONS
            and not node.keywords
        ):
            return _FUNCTIONS[node.func.id](*(walk(arg) for arg in node.args))
        raise ValueError(f"unsupported expression: {ast.dump(node)[:60]}")

    return float(walk(ast.parse(expression.strip(), mode="eval")))


async def concatenate(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    return done(i["delimiter"].join([i["string_a"], i["string_b"]]))


async def regex_replace(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    flags = 0
    if i.get("case_insensitive", True):
        flags |= re.IGNORECASE
    if i.get("multiline", False):
        flags |= re.MULTILINE
    if i.get("dotall", False):
        flags |= re.DOTALL
    result = re.sub(
        i["regex_pattern"], i["replace"], i["string"], count=i.get("count", 0), flags=flags
    )
    return done(result)


async def passthrough(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    return done(i["value"])


async def simple_math(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    names = {k: float(i.get(k, 0.0) or 0.0) for k in ("a", "b", "c")}
    result = evaluate(i["value"], names)
    return done(round(result), result)


def _write_text(ctx: NodeContext, prefix: str, text: str) -> dict[str, Any]:
    where = ctx.files.save_path(prefix, ctx.files.output)
    name = f"{where.filename}_{where.counter:05}_.txt"
    (where.folder / name).write_text(text, encoding="utf-8")
    return {
        "text": [text],
        "files": [{"filename": name, "subfolder": where.subfolder, "type": "output"}],
    }


async def save_text(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    return done(ui=await ctx.offload(_write_text, ctx, i["filename_prefix"], i["text"]))


_MULTI = STRING(multiline=True)
_STRING_MODULE = "comfy_extras.nodes_string"
_PRIMITIVE_MODULE = "comfy_extras.nodes_primitive"
_ANY_NUMBER = ["*", {"default": 0.0}]

NODES = [
    NodeDef(
        "StringConcatenate",
        concatenate,
        {"string_a": _MULTI, "string_b": _MULTI, "delimiter": STRING("")},
        outputs=("STRING",),
        category="utils/string",
        python_module=_STRING_MODULE,
        display_name="Concatenate",
    ),
    NodeDef(
        "RegexReplace",
        regex_replace,
        {"string": _MULTI, "regex_pattern": _MULTI, "replace": _MULTI},
        optional={
            "case_insensitive": BOOLEAN(True),
            "multiline": BOOLEAN(False),
            "dotall": BOOLEAN(False),
            "count": INT(0, 0, 100),
        },
        outputs=("STRING",),
        category="utils/string",
        python_module=_STRING_MODULE,
        display_name="Regex Replace",
    ),
    NodeDef(
        "PrimitiveString",
        passthrough,
        {"value": STRING()},
        outputs=("STRING",),
        category="utils/primitive",
        python_module=_PRIMITIVE_MODULE,
        display_name="String",
    ),
    NodeDef(
        "PrimitiveInt",
        passthrough,
        {"value": INT(0, -sys.maxsize, sys.maxsize, control_after_generate=True)},
        outputs=("INT",),
        category="utils/primitive",
        python_module=_PRIMITIVE_MODULE,
        display_name="Int",
    ),
    NodeDef(
        "PrimitiveFloat",
        passthrough,
        {"value": FLOAT(0.0, -sys.maxsize, sys.maxsize)},
        outputs=("FLOAT",),
        category="utils/primitive",
        python_module=_PRIMITIVE_MODULE,
        display_name="Float",
    ),
    NodeDef(
        "PrimitiveBoolean",
        passthrough,
        {"value": BOOLEAN(False)},
        outputs=("BOOLEAN",),
        category="utils/primitive",
        python_module=_PRIMITIVE_MODULE,
        display_name="Boolean",
    ),
    NodeDef(
        "SimpleMath+",
        simple_math,
        {"value": STRING("")},
        optional={"a": _ANY_NUMBER, "b": _ANY_NUMBER, "c": _ANY_NUMBER},
        outputs=("INT", "FLOAT"),
        category="essentials/utilities",
        python_module="custom_nodes.ComfyUI_essentials",
        display_name="🔧 Simple Math",
    ),
    NodeDef(
        "SaveText",
        save_text,
        {"text": LINK("STRING", forceInput=True), "filename_prefix": STRING("text/ComfyUI")},
        output_node=True,
        category="text",
        python_module="custom_nodes.comfygraph_text",
        display_name="Save Text",
        description="Writes the text to a .txt file in the output folder and shows it.",
    ),
]
