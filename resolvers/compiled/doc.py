"""What every compile unit reads of the document: the schema, the fragments, the
values of the variables @skip/@include read, field collection on an object type,
and a field's arguments coerced and converted exactly as Strawberry does."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    GraphQLField,
    GraphQLObjectType,
    GraphQLSchema,
)
from graphql.execution.values import VariableValues, get_argument_values
from strawberry.types.arguments import convert_arguments

from comfygraph.resolvers.compiled.collect import collect, subselections

if TYPE_CHECKING:
    import strawberry


@dataclass
class Doc:
    schema: GraphQLSchema
    strawberry_schema: strawberry.Schema
    fragments: Mapping[str, FragmentDefinitionNode]
    variables: Mapping[str, Any]  # only those @skip/@include read

    def object_type(self, name: str) -> GraphQLObjectType:
        t = self.schema.get_type(name)
        assert isinstance(t, GraphQLObjectType)
        return t

    def fields_of(self, type_name: str, nodes: list[FieldNode]) -> dict[str, list[FieldNode]]:
        return collect(
            self.schema, self.fragments, self.variables, self.object_type(type_name),
            subselections(nodes),
        )  # fmt: skip

    def args(self, type_name: str, name: str, node: FieldNode) -> Args:
        """The arguments of field `type_name.name` as its resolver receives them."""
        sfield = self.strawberry_schema.get_field_for_type(field_name=name, type_name=type_name)
        assert sfield is not None
        registry = self.strawberry_schema.schema_converter.scalar_registry
        config = self.strawberry_schema.config

        def convert(raw: dict[str, Any]) -> dict[str, Any]:
            return convert_arguments(raw, sfield.arguments, scalar_registry=registry, config=config)

        return Args(self.object_type(type_name).fields[name], node, convert)


@dataclass
class Args:
    """A field's arguments, coerced and converted as Strawberry would."""

    field_def: GraphQLField
    node: FieldNode
    convert: Callable[[dict[str, Any]], dict[str, Any]]

    def values(self, variables: VariableValues) -> dict[str, Any]:
        return self.convert(get_argument_values(self.field_def, self.node, variables))
