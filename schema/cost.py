"""Static cost of a GraphQL operation, computed before it runs.

Every field costs 1, times the product of the list sizes above it: a field with a `first`
argument returns at most `first` items (the literal, the variable's value, the argument's
default, else the page maximum), a list of objects without one counts `LIST_FACTOR`
items (`nodes(ids:)` counts its ids), and a connection's `edges` add no factor of their
own (its `first` already did). Leaf lists (of strings, enums) cost 1. Introspection is
not counted (GraphiQL's own query is large by nature; depth limits still apply).

The cost is an upper bound on what the operation can resolve, so a document over the
budget is refused in microseconds instead of running for seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    get_operation_ast,
    is_leaf_type,
)

from comfygraph.schema.errors import QUERY_TOO_COSTLY, ApiError
from comfygraph.schema.pagination import MAX_PAGE

LIST_FACTOR = 10


class _Coster:
    def __init__(
        self, schema: GraphQLSchema, document: DocumentNode, variables: Mapping[str, Any]
    ) -> None:
        self.schema = schema
        self.variables = variables
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.memo: dict[str, int] = {}
        self.active: set[str] = set()

    def selection_set(self, node: SelectionSetNode | None, parent: GraphQLNamedType | None) -> int:
        total = 0
        for selection in node.selections if node else ():
            if isinstance(selection, FieldNode):
                total += self.field(selection, parent)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self.schema.get_type(condition.name.value) if condition else parent
                total += self.selection_set(selection.selection_set, inner)
            elif isinstance(selection, FragmentSpreadNode):
                total += self.fragment(selection.name.value)
        return total

    def fragment(self, name: str) -> int:
        if name in self.memo:
            return self.memo[name]
        definition = self.fragments.get(name)
        if definition is None or name in self.active:
            return 0  # unknown or cyclic: validation refuses those anyway
        self.active.add(name)
        self.memo[name] = self.selection_set(
            definition.selection_set, self.schema.get_type(definition.type_condition.name.value)
        )
        self.active.discard(name)
        return self.memo[name]

    def field(self, node: FieldNode, parent: GraphQLNamedType | None) -> int:
        name = node.name.value
        if name.startswith("__"):
            return 0
        definition: GraphQLField | None = None
        if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            definition = parent.fields.get(name)
        if definition is None:  # unknown field: validation will say so; count it as one
            return 1 + self.selection_set(node.selection_set, None)
        below = get_named_type(definition.type)
        children = self.selection_set(node.selection_set, below)
        return 1 + self.factor(node, definition, below) * children

    def factor(self, node: FieldNode, definition: GraphQLField, below: GraphQLNamedType) -> int:
        if "first" in definition.args:
            return self.page_size(node, definition)
        if not isinstance(get_nullable_type(definition.type), GraphQLList) or is_leaf_type(below):
            return 1
        if node.name.value == "edges":
            return 1
        for argument in node.arguments or ():
            if isinstance(argument.value, ListValueNode):
                return max(1, len(argument.value.values))
        return LIST_FACTOR

    def page_size(self, node: FieldNode, definition: GraphQLField) -> int:
        value: Any = definition.args["first"].default_value
        for argument in node.arguments or ():
            if argument.name.value != "first":
                continue
            if isinstance(argument.value, IntValueNode):
                value = int(argument.value.value)
            elif isinstance(argument.value, VariableNode):
                value = self.variables.get(argument.value.name.value, MAX_PAGE)
            else:
                value = MAX_PAGE
        if not isinstance(value, int) or isinstance(value, bool):
            return MAX_PAGE
        return min(max(value, 1), MAX_PAGE)


def _root(schema: GraphQLSchema, operation: OperationDefinitionNode) -> GraphQLObjectType | None:
    if operation.operation is OperationType.MUTATION:
        return schema.mutation_type
    if operation.operation is OperationType.SUBSCRIPTION:
        return schema.subscription_type
    return schema.query_type


def query_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    variables: Mapping[str, Any] | None = None,
    operation_name: str | None = None,
) -> int:
    """The cost of the operation that would run (every operation when it is ambiguous)."""
    coster = _Coster(schema, document, variables if isinstance(variables, Mapping) else {})
    operation = get_operation_ast(document, operation_name)
    operations = (
        [operation]
        if operation is not None
        else [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    )
    return sum(coster.selection_set(o.selection_set, _root(schema, o)) for o in operations)


def cost_error(
    schema: GraphQLSchema,
    document: DocumentNode,
    variables: Mapping[str, Any] | None,
    operation_name: str | None,
    budget: int,
) -> ApiError | None:
    cost = query_cost(schema, document, variables, operation_name)
    if cost <= budget:
        return None
    return ApiError(
        QUERY_TOO_COSTLY,
        f"query cost {cost} exceeds the budget of {budget}",
        cost=cost,
        budget=budget,
    )
