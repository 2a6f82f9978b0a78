"""What a subscribe message asks for, decided before anything runs: the root field, its
arguments (for the per-client permission check) and the key that identical
subscriptions share.

Only a valid subscription whose one root field is written out (no fragment at the root)
gets a plan; an invalid subscription (validation, variables, arguments) gets its errors,
answered with codes; everything else (queries and mutations over the socket, documents
that do not parse) goes the ordinary per-operation way. Parsing and validation are
cached by document text.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    OperationType,
    get_operation_ast,
    parse,
    validate,
)
from graphql.execution.values import get_argument_values, get_variable_values
from strawberry.schema import BaseSchema

from comfygraph.schema.limits import Limits, document_too_large, request_error


@dataclass(frozen=True)
class Plan:
    field: str
    args: Mapping[str, Any]
    query: str
    variables: dict[str, Any] | None
    operation_name: str | None
    #: equal for subscriptions that execute identically for the same viewer class
    key: tuple[str, str | None, bytes]


class Plans:
    def __init__(self, schema: BaseSchema, limits: Limits) -> None:
        self._schema: GraphQLSchema = schema._schema  # type: ignore[attr-defined]
        self._limits = limits
        self._max_tokens = limits.max_tokens
        self._cache_size = limits.cache_size
        # Keyed by a digest of the text: the cache never holds the texts themselves.
        self._documents: OrderedDict[bytes, tuple[DocumentNode, list[GraphQLError]] | None] = (
            OrderedDict()
        )

    def plan(
        self, query: str, variables: Any, operation_name: Any
    ) -> Plan | list[GraphQLError] | None:
        """A plan; or the errors of an invalid subscription; or None for anything else
        (not a subscription, or not parseable: strawberry answers those)."""
        if variables is not None and not isinstance(variables, dict):
            return None
        if operation_name is not None and not isinstance(operation_name, str):
            return None
        too_large = document_too_large(query, self._limits)
        if too_large is not None:
            return [too_large]
        parsed = self._document(query)
        if parsed is None:
            return None
        document, errors = parsed
        operation = get_operation_ast(document, operation_name)
        if operation is None or operation.operation is not OperationType.SUBSCRIPTION:
            return None
        if errors:
            return errors
        refused = request_error(self._schema, document, variables, operation_name, self._limits)
        if refused is not None:
            return [refused]
        selections = operation.selection_set.selections
        if len(selections) != 1 or not isinstance(node := selections[0], FieldNode):
            return None
        root = self._schema.subscription_type
        definition = root.fields.get(node.name.value) if root is not None else None
        if definition is None or node.directives:
            return None
        try:
            coerced = get_variable_values(
                self._schema, operation.variable_definitions or (), variables or {}, max_errors=5
            )
            if isinstance(coerced, list):
                return coerced
            args = get_argument_values(definition, node, coerced)
            canonical = orjson.dumps(variables, option=orjson.OPT_SORT_KEYS) if variables else b""
        except GraphQLError as error:
            return [error]
        except (TypeError, ValueError, orjson.JSONEncodeError):
            return None
        return Plan(
            field=node.name.value,
            args=args,
            query=query,
            variables=variables,
            operation_name=operation_name,
            key=(query, operation_name, canonical),
        )

    def _document(self, query: str) -> tuple[DocumentNode, list[GraphQLError]] | None:
        """The parsed document and its validation errors; None when it does not parse
        (cached either way)."""
        key = hashlib.blake2b(query.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        if key in self._documents:
            self._documents.move_to_end(key)
            return self._documents[key]
        parsed: tuple[DocumentNode, list[GraphQLError]] | None
        try:
            document = parse(query, max_tokens=self._max_tokens)
        except GraphQLError:
            parsed = None
        else:
            parsed = (document, validate(self._schema, document))
        self._documents[key] = parsed
        if len(self._documents) > self._cache_size:
            self._documents.popitem(last=False)
        return parsed
