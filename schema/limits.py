"""Limits on what one GraphQL document may ask for: tokens (at parse time), then depth
and aliases (checked before validation, so an oversized document never reaches the
costlier validation rules). Each refusal is a GraphQL error with its own code.

Parsing and validation are cached (strawberry's ParserCache and ValidationCache, one
extension instance per request, LRU caches shared)."""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from strawberry.extensions import (
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)

from comfygraph.schema.errors import QUERY_TOO_DEEP, TOO_MANY_ALIASES, ApiError


@dataclass(frozen=True)
class Limits:
    max_depth: int = 12
    max_aliases: int = 50
    max_tokens: int = 5000
    cache_size: int = 512


class _Counter:
    """Depth and alias count of a document, each fragment measured once (a fragment
    spread many times costs nothing more; cycles count as nothing)."""

    def __init__(self, document: DocumentNode) -> None:
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.memo: dict[str, tuple[int, int]] = {}
        self.active: set[str] = set()

    def measure(self, selection_set: SelectionSetNode | None) -> tuple[int, int]:
        """(depth, aliases) below `selection_set`; what is below an introspection field
        is not counted."""
        depth = aliases = 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                aliases += selection.alias is not None
                if selection.name.value.startswith("__"):
                    continue  # introspection: GraphiQL's own query is deep by nature
                below, inner = self.measure(selection.selection_set)
                depth, aliases = max(depth, below + 1), aliases + inner
            elif isinstance(selection, InlineFragmentNode):
                below, inner = self.measure(selection.selection_set)
                depth, aliases = max(depth, below), aliases + inner
            elif isinstance(selection, FragmentSpreadNode):
                below, inner = self.fragment(selection.name.value)
                depth, aliases = max(depth, below), aliases + inner
        return depth, aliases

    def fragment(self, name: str) -> tuple[int, int]:
        if name in self.memo:
            return self.memo[name]
        definition = self.fragments.get(name)
        if definition is None or name in self.active:
            return 0, 0
        self.active.add(name)
        self.memo[name] = self.measure(definition.selection_set)
        self.active.discard(name)
        return self.memo[name]


def limit_error(document: DocumentNode, limits: Limits) -> ApiError | None:
    counter = _Counter(document)
    depth = aliases = 0
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            below, inner = counter.measure(definition.selection_set)
            depth, aliases = max(depth, below), aliases + inner
    if depth > limits.max_depth:
        return ApiError(
            QUERY_TOO_DEEP, f"query depth {depth} exceeds the limit of {limits.max_depth}"
        )
    if aliases > limits.max_aliases:
        return ApiError(
            TOO_MANY_ALIASES, f"{aliases} aliases exceed the limit of {limits.max_aliases}"
        )
    return None


class _Verdicts:
    """Bounded memo of limit_error by query text (the text fixes the document)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.cache: OrderedDict[str, ApiError | None] = OrderedDict()

    def check(self, query: str, document: DocumentNode) -> ApiError | None:
        if query in self.cache:
            self.cache.move_to_end(query)
            return self.cache[query]
        verdict = self.cache[query] = limit_error(document, self.limits)
        if len(self.cache) > self.limits.cache_size:
            self.cache.popitem(last=False)
        return verdict


class Parsing(ParserCache):
    """ParserCache that leaves a document it cannot parse to strawberry, which parses it
    again and reports the syntax error through the normal error path (error policy
    included) instead of an exception out of an extension hook."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        with contextlib.suppress(GraphQLError):
            context.graphql_document = self.cached_parse_document(
                context.query, **context.parse_options
            )
        yield


class Validation(ValidationCache):
    """ValidationCache preceded by the depth and alias limits: a document over them is
    refused with its own code before any validation rule runs."""

    def __init__(self, verdicts: _Verdicts) -> None:
        super().__init__(maxsize=verdicts.limits.cache_size)
        self.verdicts = verdicts

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        assert context.graphql_document is not None
        error = self.verdicts.check(context.query or "", context.graphql_document)
        if error is None:
            yield from super().on_validate()
            return
        context.pre_execution_errors = [error]  # strawberry then skips its own validation
        yield


def limit_extensions(limits: Limits) -> list[Callable[[], SchemaExtension]]:
    """Factories (a fresh extension per request) in the order they must run."""
    verdicts = _Verdicts(limits)
    return [
        partial(MaxTokensLimiter, max_token_count=limits.max_tokens),
        partial(Parsing, maxsize=limits.cache_size),
        partial(Validation, verdicts),
    ]
