"""Workflow templates: loading, parameter validation and binding (no server needed)."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest

from comfygraph.comfy.templates import (
    SEED_MAX,
    WorkflowTemplate,
    bind,
    load_template_file,
    load_templates,
    parse_template,
    validate,
)
from comfygraph.emulator.files import Files
from comfygraph.emulator.nodes import node_registry
from comfygraph.emulator.validation import validate_prompt

BUILTINS = load_templates()
NAMES = [
    "character-caption", "compose-ad", "image-edit", "image-to-clip", "img2img", "lipsync-multi",
    "lipsync-one", "product-image", "style-transfer", "video-lipsync", "wan-i2v",
]  # fmt: skip
ALLOWED = "https://files.test/"


def allowed(url: str) -> bool:
    return url.startswith(ALLOWED)


def template(name: str) -> WorkflowTemplate:
    found = BUILTINS.get(name)
    assert found is not None
    return found


def sample_values(t: WorkflowTemplate) -> dict[str, Any]:
    """Valid values for every required parameter (files as allowed URLs)."""
    values: dict[str, Any] = {}
    for p in t.parameters:
        if not p.required:
            continue
        if p.is_file:
            values[p.name] = (
                [ALLOWED + "a.webp", ALLOWED + "b.webp"] if p.is_list else ALLOWED + p.name
            )
        else:
            values[p.name] = "ohwx" if p.type == "STRING" else p.min or 1
    return values


def worker_names(t: WorkflowTemplate, clean: dict[str, Any]) -> dict[str, Any]:
    return {
        p.name: (
            [f"{p.name}_{n}.webp" for n, _ in enumerate(clean[p.name])]
            if p.is_list
            else f"{p.name}.bin"
        )
        for p in t.parameters
        if p.is_file and p.name in clean
    }


def write(folder: Path, name: str, data: Any) -> Path:
    path = folder / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


MINIMAL: dict[str, Any] = {
    "name": "invert",
    "outputType": "IMAGE",
    "description": "Invert an uploaded image",
    "graph": {
        "1": {"class_type": "LoadImage", "inputs": {"image": ""}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {
            "class_type": "SaveImage",
            "inputs": {"images": ["2", 0], "filename_prefix": "invert"},
        },
    },
    "parameters": [
        {"name": "image", "type": "IMAGE", "required": True, "bind": ["1", "image"]},
        {"name": "prefix", "type": "STRING", "default": "invert", "bind": ["3", "filename_prefix"]},
    ],
    "outputs": ["3"],
}


# ------------------------------------------------------------------ loading


def test_builtins_load_without_problems() -> None:
    assert BUILTINS.problems == ()
    assert sorted(BUILTINS.templates) == NAMES
    output_types = {name: t.output_type for name, t in BUILTINS.templates.items()}
    assert output_types["character-caption"] == "TEXT"
    assert {
        output_types[n] for n in ("img2img", "style-transfer", "image-edit", "product-image")
    } == {"IMAGE"}
    assert {output_types[n] for n in ("lipsync-one", "wan-i2v", "image-to-clip", "compose-ad")} == {
        "VIDEO"
    }


def test_every_class_type_is_known_to_the_emulator() -> None:
    registry = node_registry()
    for t in BUILTINS.templates.values():
        unknown = {node["class_type"] for node in t.graph.values()} - set(registry)
        assert not unknown, (t.name, unknown)
        assert all(registry[t.graph[o]["class_type"]].output_node for o in t.outputs), t.name


@pytest.mark.parametrize("name", NAMES)
def test_bound_graph_passes_emulator_validation(name: str, tmp_path: Path) -> None:
    t = template(name)
    clean, errors = validate(t, sample_values(t), is_allowed_file=allowed)
    assert errors == []
    names = worker_names(t, clean)
    files = Files(output=tmp_path / "out", input=tmp_path / "in", temp=tmp_path / "tmp")
    files.ensure()
    for value in names.values():
        for file_name in [value] if isinstance(value, str) else value:
            (files.input / file_name).write_bytes(b"x")
    graph = bind(t, clean, names)
    verdict = validate_prompt(graph, node_registry(), files)
    assert verdict.ok, (verdict.error, verdict.node_errors)
    assert verdict.node_errors == {}
    assert sorted(verdict.outputs) == sorted(t.outputs)


def test_extra_directory_adds_templates_and_names_bad_files(tmp_path: Path) -> None:
    write(tmp_path, "invert.json", MINIMAL)
    write(tmp_path, "broken.json", "{not json")
    half = copy.deepcopy(MINIMAL) | {"name": "half"}
    half["parameters"][0]["bind"] = ["9", "image"]  # a node the graph does not have
    write(tmp_path, "half.json", half)
    write(tmp_path, "clash.json", copy.deepcopy(MINIMAL) | {"name": "img2img"})
    loaded = load_templates(tmp_path)
    assert "invert" in loaded.templates and "half" not in loaded.templates
    assert loaded.templates["img2img"].source.endswith("comfy/workflows/img2img.json")
    problems = {Path(p.source).name: p.reason for p in loaded.problems}
    assert set(problems) == {"broken.json", "half.json", "clash.json"}
    assert "missing node 9" in problems["half.json"]
    assert "duplicate workflow name 'img2img'" in problems["clash.json"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"outputType": "GIF"}, "outputType"),
        ({"outputs": ["7"]}, "outputs"),
        ({"name": "Has Spaces"}, "name"),
        ({"graph": {"1": {"inputs": {}}}}, "class_type"),
        ({"extra": 1}, "unknown keys"),
    ],
)
def test_bad_template_structure_is_refused(change: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_template(MINIMAL | change, source="t.json")


@pytest.mark.parametrize(
    ("parameter", "reason"),
    [
        ({"name": "w", "type": "INT", "bind": ["1", "w"]}, "needs a default"),
        (
            {"name": "w", "type": "INT", "default": 5, "min": 10, "bind": ["1", "w"]},
            "not a valid value",
        ),
        ({"name": "w", "type": "COLOR", "default": 5, "bind": ["1", "w"]}, "type must be"),
        ({"name": "w", "type": "INT", "default": 5, "bind": ["1"]}, "bind"),
        (
            {"name": "w", "type": "INT", "default": 5, "bind": ["1", "w"], "requried": True},
            "unknown keys",
        ),
        ({"name": "prefix", "type": "STRING", "default": "x", "bind": ["1", "x"]}, "unique"),
        (
            {"name": "y", "type": "STRING", "default": "x", "bind": ["3", "filename_prefix"]},
            "same node input",
        ),
    ],
)
def test_bad_parameter_is_refused(parameter: dict[str, Any], reason: str) -> None:
    data = copy.deepcopy(MINIMAL)
    data["parameters"].append(parameter)
    with pytest.raises(ValueError, match=reason):
        parse_template(data, source="t.json")


def test_a_template_file_round_trips(tmp_path: Path) -> None:
    t = load_template_file(write(tmp_path, "invert.json", MINIMAL))
    assert (t.name, t.output_type, t.outputs) == ("invert", "IMAGE", ("3",))
    assert t.parameter("image") is not None and t.parameter("image").bind == (("1", "image"),)  # type: ignore[union-attr]


# ------------------------------------------------------------------ validation


def errors_of(t: WorkflowTemplate, values: dict[str, Any]) -> list[tuple[str, tuple[str, ...]]]:
    _, errors = validate(t, values, is_allowed_file=allowed)
    return [(e.code, e.path) for e in errors]


def test_unknown_and_missing_parameters_each_get_an_error() -> None:
    t = template("img2img")
    assert errors_of(t, {"colour": "red"}) == [
        ("UNKNOWN_PARAMETER", ("parameters", "colour")),
        ("MISSING_PARAMETER", ("parameters", "image")),
        ("MISSING_PARAMETER", ("parameters", "prompt")),
    ]


def test_each_bad_field_gets_its_own_error() -> None:
    t = template("product-image")
    values = {
        "prompt": "a mug",
        "width": 4096,
        "height": 512.0,
        "view_type": "top",
        "guidance": "7",
    }
    _, errors = validate(t, values)
    by_field = {e.path[1]: e for e in errors}
    assert set(by_field) == {"width", "height", "view_type", "guidance"}
    assert all(e.code == "INVALID_PARAMETER" for e in errors)
    assert "at most 2048" in by_field["width"].message
    assert "one of front, side, back, detail, lifestyle" in by_field["view_type"].message
    assert by_field["width"].as_dict() == {
        "code": "INVALID_PARAMETER",
        "message": by_field["width"].message,
        "path": ["parameters", "width"],
    }


@pytest.mark.parametrize(
    ("name", "value", "ok"),
    [
        ("width", 512, True),
        ("width", 512.0, False),  # INT takes no floats,
        ("width", True, False),  # no booleans,
        ("width", "512", False),  # no strings
        ("width", 255, False),  # below min
        ("guidance", 7, True),  # FLOAT takes ints
        ("guidance", 7.5, True),
        ("guidance", float("nan"), False),
        ("guidance", False, False),
        ("prompt", "", False),  # shorter than min length 1
        ("prompt", 5, False),
        ("seed", 42, True),
        ("seed", -1, False),
        ("seed", SEED_MAX + 1, False),
        ("seed", 3.0, False),
    ],
)
def test_type_checks(name: str, value: Any, ok: bool) -> None:
    values = {"prompt": "a mug", name: value}
    assert (errors_of(template("product-image"), values) == []) is ok


def test_boolean_is_strict_and_defaults_fill_in() -> None:
    t = template("lipsync-one")
    files = {"image": ALLOWED + "p.png", "audio": ALLOWED + "s.wav"}
    assert errors_of(t, files | {"trim_to_audio": "false"}) == [
        ("INVALID_PARAMETER", ("parameters", "trim_to_audio"))
    ]
    assert errors_of(t, files | {"trim_to_audio": 0}) == [
        ("INVALID_PARAMETER", ("parameters", "trim_to_audio"))
    ]
    clean, errors = validate(t, files | {"trim_to_audio": False}, is_allowed_file=allowed)
    assert errors == [] and clean["trim_to_audio"] is False
    assert clean["width"] == 640 and clean["num_frames"] == 81


def test_empty_seed_gets_a_recorded_random_value() -> None:
    t = template("img2img")
    values = {"image": ALLOWED + "x.png", "prompt": "watercolor"}
    first, _ = validate(t, values, rng=random.Random(1))
    second, _ = validate(t, values | {"seed": None}, rng=random.Random(2))
    third, _ = validate(t, values | {"seed": ""}, rng=random.Random(1))
    assert 0 <= first["seed"] <= SEED_MAX and isinstance(first["seed"], int)
    assert first["seed"] != second["seed"] and third["seed"] == first["seed"]
    assert validate(t, values | {"seed": 7})[0]["seed"] == 7


def test_file_parameters_take_allowed_urls_only() -> None:
    t = template("style-transfer")
    values = {"source_image": ALLOWED + "a.png", "style_image": "https://evil.example/b.png"}
    assert errors_of(t, values) == [("INVALID_PARAMETER", ("parameters", "style_image"))]
    assert errors_of(t, values | {"style_image": 42}) == [
        ("INVALID_PARAMETER", ("parameters", "style_image"))
    ]
    assert errors_of(t, values | {"style_image": ALLOWED + "b.png"}) == []


def test_list_parameter_counts_and_pattern() -> None:
    t = template("compose-ad")
    base = {"product_name": "Glow Serum"}
    assert errors_of(t, base | {"clips": [ALLOWED + "1.mp4"]}) == []
    assert errors_of(t, base | {"clips": []}) == [("INVALID_PARAMETER", ("parameters", "clips"))]
    assert errors_of(t, base | {"clips": ALLOWED + "1.mp4"}) == [
        ("INVALID_PARAMETER", ("parameters", "clips"))
    ]
    too_many = [ALLOWED + f"{n}.mp4" for n in range(13)]
    assert errors_of(t, base | {"clips": too_many}) == [
        ("INVALID_PARAMETER", ("parameters", "clips"))
    ]
    colour = base | {"clips": [ALLOWED + "1.mp4"], "text_color": "white"}
    assert errors_of(t, colour) == [("INVALID_PARAMETER", ("parameters", "text_color"))]


# ------------------------------------------------------------------ binding


def test_bind_copies_and_feeds_one_value_to_several_inputs() -> None:
    t = template("image-to-clip")
    before = json.dumps(t.graph, sort_keys=True)
    clean, errors = validate(
        t, {"image": ALLOWED + "p.png", "prompt": "waves", "fps": 12}, is_allowed_file=allowed
    )
    assert errors == []
    graph = bind(t, clean, {"image": "product (1).png"})
    assert json.dumps(t.graph, sort_keys=True) == before
    assert graph["5"]["inputs"]["image"] == "product (1).png"
    assert graph["9"]["inputs"]["b"] == graph["14"]["inputs"]["fps"] == 12.0
    assert graph["12"]["inputs"]["seed"] == clean["seed"]


def test_optional_file_left_out_drops_its_branch() -> None:
    t = template("compose-ad")
    clean, _ = validate(
        t, {"clips": [ALLOWED + "1.mp4", ALLOWED + "2.mp4"], "product_name": "Glow"}
    )
    graph = bind(t, clean, {"clips": ["c1.mp4", "c2.mp4"]})
    assert "1" not in graph and "music" not in graph["2"]["inputs"]
    assert graph["2"]["inputs"]["clips"] == "c1.mp4\nc2.mp4"
    with_music, _ = validate(
        t, {"clips": [ALLOWED + "1.mp4"], "product_name": "Glow", "music": ALLOWED + "m.mp3"}
    )
    graph = bind(t, with_music, {"clips": ["c1.mp4"], "music": "m.mp3"})
    assert graph["1"]["inputs"]["audio"] == "m.mp3" and graph["2"]["inputs"]["music"] == ["1", 0]


def test_bind_requires_a_worker_name_for_each_file() -> None:
    t = template("img2img")
    clean, _ = validate(t, {"image": ALLOWED + "x.png", "prompt": "p"})
    with pytest.raises(KeyError, match="image"):
        bind(t, clean, {})
