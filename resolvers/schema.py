"""The GraphQL schema, assembled here; its types, roots and policies live in their
own modules (one per type group)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import strawberry
from strawberry.extensions import SchemaExtension

from comfygraph.db.unreachable import database_down
from comfygraph.resolvers.mutation import Mutation
from comfygraph.resolvers.query import Query
from comfygraph.resolvers.subscription import Subscription
from comfygraph.schema.docs import describe
from comfygraph.schema.error_policy import ErrorCodes, MaskUnexpected, Schema
from comfygraph.schema.limits import Limits, limit_extensions

ExtensionFactory = type[SchemaExtension] | Callable[[], SchemaExtension]


def build_schema(
    *, extensions: Sequence[ExtensionFactory] = (), limits: Limits | None = None
) -> strawberry.Schema:
    """The schema with its request limits, caches and error policy; `extensions` (the
    server's, e.g. authentication) run after those."""
    schema = Schema(
        unavailable=database_down,  # an outage: logged as a warning line, not as a bug
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[
            *limit_extensions(limits or Limits()),
            ErrorCodes,
            MaskUnexpected,
            *extensions,
        ],
    )
    describe(schema._schema)  # every type, field, argument and enum value documented
    return schema
