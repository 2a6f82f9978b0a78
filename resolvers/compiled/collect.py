"""Field collection as the GraphQL spec defines it (CollectFields): @skip/@include,
inline fragments and fragment spreads whose type condition applies to the runtime
type, fields merged by response key. The compiler runs it once per plan."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from graphql import (
    BooleanValueNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    SelectionNode,
    SelectionSetNode,
    VariableNode,
    is_abstract_type,
)

DIRECTIVES = frozenset({"skip", "include"})


class Unsupported(Exception):
    """The compiler does not know something this document asks for."""


def directive_variables(nodes: Iterable[Any]) -> set[str]:
    """Names of the variables @skip/@include read anywhere under `nodes` (the plan is
    built per value of those); Unsupported for any other directive on a selection."""
    names: set[str] = set()
    stack = list(nodes)
    while stack:
        node = stack.pop()
        for directive in getattr(node, "directives", None) or ():
            if directive.name.value not in DIRECTIVES:
                raise Unsupported(f"@{directive.name.value}")
            for arg in directive.arguments or ():
                if isinstance(arg.value, VariableNode):
                    names.add(arg.value.name.value)
        selection_set = getattr(node, "selection_set", None)
        if selection_set is not None:
            stack.extend(selection_set.selections)
    return names


def _included(node: SelectionNode, variables: Mapping[str, Any]) -> bool:
    for directive in node.directives or ():
        arg = next((a for a in directive.arguments or () if a.name.value == "if"), None)
        if arg is None:
            continue
        if isinstance(arg.value, VariableNode):
            value = variables.get(arg.value.name.value)
        elif isinstance(arg.value, BooleanValueNode):
            value = arg.value.value
        else:
            raise Unsupported("directive argument")
        if directive.name.value == "skip" and value is True:
            return False
        if directive.name.value == "include" and value is not True:
            return False
    return True


def collect(
    schema: GraphQLSchema,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
    runtime_type: GraphQLObjectType,
    selection_sets: Iterable[SelectionSetNode],
) -> dict[str, list[FieldNode]]:
    """Response key -> the field nodes merged under it, in document order."""
    fields: dict[str, list[FieldNode]] = {}
    visited: set[str] = set()

    def applies(type_name: str | None) -> bool:
        if type_name is None or type_name == runtime_type.name:
            return True
        condition = schema.get_type(type_name)
        return (
            condition is not None
            and is_abstract_type(condition)
            and schema.is_sub_type(condition, runtime_type)  # type: ignore[arg-type]
        )

    def walk(selection_set: SelectionSetNode) -> None:
        for selection in selection_set.selections:
            if not _included(selection, variables):
                continue
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                fields.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                if applies(condition.name.value if condition else None):
                    walk(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in visited:
                    continue
                visited.add(name)
                fragment = fragments.get(name)
                if fragment is not None and applies(fragment.type_condition.name.value):
                    walk(fragment.selection_set)

    for selection_set in selection_sets:
        walk(selection_set)
    return fields


def subselections(nodes: Iterable[FieldNode]) -> list[SelectionSetNode]:
    return [n.selection_set for n in nodes if n.selection_set is not None]
