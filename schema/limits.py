"""Limits on what one GraphQL document may ask for: tokens (at parse time), then depth
and aliases (checked before validation, so an oversized document never reaches the
costlier validation rules). Each refusal is a GraphQL error with its own code.

A document longer than `max_document_bytes` is refused before it is parsed or cached,
and the caches are keyed by a digest of the text (never by the text itself), so what
they keep is bounded. After validation, the operation's static cost (schema/cost.py)
is held against `max_query_cost`, and NUL characters (which PostgreSQL refuses in text)
are refused in string literals and variables, each with its own code.

Parsing and validation are cached (a digest-keyed parse cache, strawberry's
ValidationCache; one extension instance per request, caches shared)."""

from __future__ import annotations

import contextlib
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    Visitor,
    parse,
    visit,
)
from graphql.language.visitor import BREAK
from strawberry.extensions import (
    MaxTokensLimiter,
    SchemaExtension,
    ValidationCache,
)

from comfygraph.schema.cost import cost_error
from comfygraph.schema.errors import (
    BAD_INPUT,
    DOCUMENT_TOO_LARGE,
    QUERY_TOO_DEEP,
    TOO_MANY_ALIASES,
    TOO_MANY_LOGINS,
    ApiError,
)


@dataclass(frozen=True)
class Limits:
    max_depth: int = 12
    max_aliases: int = 50
    max_tokens: int = 5000
    cache_size: int = 512
    max_document_bytes: int = 64 * 1024
    max_query_cost: int = 20_000


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


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def document_too_large(query: str | None, limits: Limits) -> ApiError | None:
    """Refuses a document over the byte limit (checked on characters first: cheap)."""
    if query is None or len(query) * 4 <= limits.max_document_bytes:
        return None
    size = len(query.encode("utf-8", "surrogatepass"))
    if size <= limits.max_document_bytes:
        return None
    return ApiError(
        DOCUMENT_TOO_LARGE,
        f"the GraphQL document is {size} bytes, over the limit of {limits.max_document_bytes}",
        size=size,
        limit=limits.max_document_bytes,
    )


def _has_nul(value: object, depth: int = 0) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if depth > 32:
        return False  # deeper than any input type; the JSON parser bounds it anyway
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v, depth + 1) for v in value)
    return False


def _nul_in_document(document: DocumentNode) -> bool:
    found = False

    class Finder(Visitor):
        def enter_string_value(self, node: StringValueNode, *_: object) -> object:
            nonlocal found
            if "\x00" in node.value:
                found = True
                return BREAK
            return None

    visit(document, Finder())
    return found


#: root mutation fields an operation may ask for at most once (login: one bcrypt each)
ONCE_PER_OPERATION = frozenset({"login"})


def _root_fields(document: DocumentNode, operation: OperationDefinitionNode) -> list[str]:
    """Names of the root fields of an operation, through (inline) fragments."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    names: list[str] = []
    seen: set[str] = set()

    def walk(selection_set: SelectionSetNode) -> None:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                names.append(selection.name.value)
            elif isinstance(selection, InlineFragmentNode):
                walk(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = fragments.get(selection.name.value)
                if fragment is not None and fragment.name.value not in seen:
                    seen.add(fragment.name.value)
                    walk(fragment.selection_set)

    walk(operation.selection_set)
    return names


def repeated_field_error(document: DocumentNode) -> ApiError | None:
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        names = _root_fields(document, definition)
        for name in ONCE_PER_OPERATION:
            if names.count(name) > 1:
                return ApiError(
                    TOO_MANY_LOGINS if name == "login" else BAD_INPUT,
                    f"at most one {name} per operation ({names.count(name)} asked for)",
                )
    return None


NUL_ERROR = "a NUL character (\\u0000) is not allowed in any input"


class _Verdicts:
    """Bounded memo of the document-only checks, by a digest of the query text."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.cache: OrderedDict[bytes, ApiError | None] = OrderedDict()

    def check(self, query: str, document: DocumentNode) -> ApiError | None:
        key = _digest(query)
        if key in self.cache:
            self.cache.move_to_end(key)
            return self.cache[key]
        verdict = limit_error(document, self.limits) or repeated_field_error(document)
        if verdict is None and _nul_in_document(document):
            verdict = ApiError(BAD_INPUT, NUL_ERROR)
        self.cache[key] = verdict
        if len(self.cache) > self.limits.cache_size:
            self.cache.popitem(last=False)
        return verdict


class Parsing(SchemaExtension):
    """A parse cache keyed by a digest of the text; a document over the byte limit is
    refused before parsing. A document it cannot parse is left to strawberry, which
    parses it again and reports the syntax error through the normal error path (error
    policy included) instead of an exception out of an extension hook."""

    def __init__(self, limits: Limits, cache: OrderedDict[tuple[bytes, str], DocumentNode]) -> None:
        super().__init__()
        self.limits = limits
        self.cache = cache

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        error = document_too_large(context.query, self.limits)
        if error is not None:
            raise error
        if context.query is not None:
            key = (_digest(context.query), repr(sorted(context.parse_options.items())))
            document = self.cache.get(key)
            if document is None:
                with contextlib.suppress(GraphQLError):
                    document = parse(context.query, **context.parse_options)
                    self.cache[key] = document
                    if len(self.cache) > self.limits.cache_size:
                        self.cache.popitem(last=False)
            else:
                self.cache.move_to_end(key)
            context.graphql_document = document
        yield


def request_error(
    schema: GraphQLSchema,
    document: DocumentNode,
    variables: Mapping[str, Any] | None,
    operation_name: str | None,
    limits: Limits,
) -> ApiError | None:
    """The checks that depend on the variables too: NULs in them, then the cost."""
    if _has_nul(variables):
        return ApiError(BAD_INPUT, NUL_ERROR)
    return cost_error(schema, document, variables, operation_name, limits.max_query_cost)


class Validation(ValidationCache):
    """ValidationCache preceded by the depth and alias limits: a document over them is
    refused with its own code before any validation rule runs; then the cost budget and
    the NUL check on variables."""

    def __init__(self, verdicts: _Verdicts) -> None:
        super().__init__(maxsize=verdicts.limits.cache_size)
        self.verdicts = verdicts

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        assert context.graphql_document is not None
        error = self.verdicts.check(context.query or "", context.graphql_document)
        if error is None:
            error = request_error(
                context.schema._schema,
                context.graphql_document,
                context.variables,
                context.operation_name,
                self.verdicts.limits,
            )
        if error is None:
            yield from super().on_validate()
            return
        context.pre_execution_errors = [error]  # strawberry then skips its own validation
        yield


def limit_extensions(limits: Limits) -> list[Callable[[], SchemaExtension]]:
    """Factories (a fresh extension per request) in the order they must run."""
    verdicts = _Verdicts(limits)
    documents: OrderedDict[tuple[bytes, str], DocumentNode] = OrderedDict()
    return [
        partial(MaxTokensLimiter, max_token_count=limits.max_tokens),
        partial(Parsing, limits, documents),
        partial(Validation, verdicts),
    ]
