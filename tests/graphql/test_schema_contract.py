"""The served schema keeps the public contract (tests/data/API.graphql, a copy of the
design's), and schema.graphql at the repository root is what `export-schema` prints."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    GraphQLUnionType,
    build_schema,
)

from comfygraph.resolvers.schema import build_schema as build_served

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "tests" / "data" / "API.graphql"


@pytest.fixture(scope="module")
def sdl() -> str:
    return build_served().as_str().rstrip() + "\n"


@pytest.fixture(scope="module")
def served(sdl: str) -> GraphQLSchema:
    return build_schema(sdl)


def test_schema_graphql_is_up_to_date(sdl: str) -> None:
    exported = (ROOT / "schema.graphql").read_text()
    assert exported == sdl, (
        "schema.graphql is stale: run `comfygraph export-schema > schema.graphql`"
    )


def _problems(contract: GraphQLSchema, served: GraphQLSchema) -> list[str]:
    problems = []
    for name, want in contract.type_map.items():
        if name.startswith("__"):
            continue
        have = served.type_map.get(name)
        if have is None or type(have) is not type(want):
            problems.append(f"type {name}: missing or of another kind")
            continue
        if isinstance(want, GraphQLEnumType):
            assert isinstance(have, GraphQLEnumType)
            problems += [f"enum {name}.{v}" for v in want.values if v not in have.values]
        if isinstance(want, GraphQLUnionType):
            assert isinstance(have, GraphQLUnionType)
            missing = {t.name for t in want.types} - {t.name for t in have.types}
            problems += [f"union {name} lacks {m}" for m in sorted(missing)]
        if isinstance(want, GraphQLObjectType | GraphQLInterfaceType):
            assert isinstance(have, GraphQLObjectType | GraphQLInterfaceType)
            missing = {i.name for i in want.interfaces} - {i.name for i in have.interfaces}
            problems += [f"{name} does not implement {m}" for m in sorted(missing)]
        if isinstance(want, GraphQLObjectType | GraphQLInterfaceType | GraphQLInputObjectType):
            problems += _field_problems(name, want, have)
    return problems


def _field_problems(name: str, want: object, have: object) -> list[str]:
    problems = []
    for field_name, field in want.fields.items():  # type: ignore[attr-defined]
        got = have.fields.get(field_name)  # type: ignore[attr-defined]
        if got is None:
            problems.append(f"field {name}.{field_name} missing")
            continue
        if str(got.type) != str(field.type) and not _widened(field.type, got.type):
            problems.append(f"{name}.{field_name}: {got.type} instead of {field.type}")
        if hasattr(field, "default_value") and field.default_value != got.default_value:
            problems.append(f"{name}.{field_name}: default {got.default_value!r}")
        for arg_name, arg in getattr(field, "args", {}).items():
            have_arg = got.args.get(arg_name)
            if have_arg is None:
                problems.append(f"argument {name}.{field_name}({arg_name}) missing")
            elif str(have_arg.type) != str(arg.type):
                problems.append(f"{name}.{field_name}({arg_name}): {have_arg.type}")
            elif have_arg.default_value != arg.default_value:
                problems.append(f"{name}.{field_name}({arg_name}): default changed")
        extra_required = [
            a for a, v in getattr(got, "args", {}).items()
            if a not in getattr(field, "args", {}) and str(v.type).endswith("!")
        ]  # fmt: skip
        problems += [f"{name}.{field_name}: new required argument {a}" for a in extra_required]
    return problems


def _widened(want: GraphQLOutputType, have: GraphQLOutputType) -> bool:
    """An output field's union became an interface that every member implements, with
    the same list/non-null wrapping: each query valid before stays valid (fragments on a
    member or on the union still apply) and it may now select common fields directly."""
    if isinstance(want, GraphQLNonNull | GraphQLList):
        return type(have) is type(want) and _widened(want.of_type, have.of_type)  # type: ignore[attr-defined]
    if not (isinstance(want, GraphQLUnionType) and isinstance(have, GraphQLInterfaceType)):
        return False
    return all(have.name in {i.name for i in member.interfaces} for member in want.types)


def test_every_name_of_the_contract_is_served(served: GraphQLSchema) -> None:
    contract = build_schema(CONTRACT.read_text())
    assert _problems(contract, served) == []


def test_the_check_notices_a_broken_contract(served: GraphQLSchema) -> None:
    contract = build_schema(
        CONTRACT.read_text()
        .replace("  hasNextPage: Boolean!", "  hasNextPage: Boolean!\n  pageCount: Int!")
        .replace("enum Role { USER ADMIN }", "enum Role { USER ADMIN GUEST }")
        # A union that the served interface does not cover is not a compatible widening.
        .replace("type SubmitJobPayload { job: Job ", "type SubmitJobPayload { job: Wider ")
        + "\ntype Other { id: ID! }\nunion Wider = ImageJob | Other\n"
    )
    assert sorted(_problems(contract, served)) == [
        "SubmitJobPayload.job: GenerationJob instead of Wider",
        "enum Role.GUEST",
        "field PageInfo.pageCount missing",
        "type Other: missing or of another kind",
        "type Wider: missing or of another kind",
    ]


def test_every_type_field_argument_and_enum_value_has_a_description() -> None:
    schema = build_served()._schema
    missing = []
    for name, kind in schema.type_map.items():
        if name.startswith("__") or name in {"String", "Int", "Float", "Boolean", "ID"}:
            continue
        if not kind.description:
            missing.append(name)
        if isinstance(kind, GraphQLEnumType):
            missing += [f"{name}.{v}" for v, d in kind.values.items() if not d.description]
        if isinstance(kind, GraphQLObjectType | GraphQLInterfaceType | GraphQLInputObjectType):
            for field_name, field in kind.fields.items():
                if not field.description:
                    missing.append(f"{name}.{field_name}")
                missing += [f"{name}.{field_name}({a})"
                            for a, arg in getattr(field, "args", {}).items()
                            if not arg.description]  # fmt: skip
    assert missing == []


def test_string_parameters_say_min_and_max_are_lengths() -> None:
    parameter = build_served()._schema.type_map["WorkflowParameter"]
    assert isinstance(parameter, GraphQLObjectType)
    for bound in ("min", "max"):
        assert "STRING" in (parameter.fields[bound].description or "")
        assert "length" in (parameter.fields[bound].description or "")
