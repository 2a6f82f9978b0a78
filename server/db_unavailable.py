"""A database that is down (restarting, unreachable) is SERVICE_UNAVAILABLE for the
client, with a message that says to retry, not a masked INTERNAL_SERVER_ERROR."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

# The classifier is db/'s (the job runner uses it too); server/graphql.py imports it here.
from comfygraph.db.unreachable import database_down

SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
MESSAGE = "the database is unavailable right now; nothing was changed: try again shortly"


def not_committed() -> GraphQLError:
    """The request ran but its transaction could not be committed: nothing was saved."""
    return GraphQLError(
        "the database is unavailable right now; nothing was saved: try again shortly",
        extensions={"code": SERVICE_UNAVAILABLE},
    )


def unavailable() -> GraphQLError:
    """Nothing ran: the database needed before the operation (the viewer) is down."""
    return GraphQLError(MESSAGE, extensions={"code": SERVICE_UNAVAILABLE})


def _unavailable(error: GraphQLError) -> GraphQLError:
    return GraphQLError(
        MESSAGE, nodes=error.nodes, source=error.source, positions=error.positions,
        path=error.path, extensions={"code": SERVICE_UNAVAILABLE},
    )  # fmt: skip


class DatabaseUnavailable(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        yield
        result: Any = self.execution_context.result
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = [
                _unavailable(e)
                if not (e.extensions or {}).get("code") and database_down(e.original_error)
                else e
                for e in errors
            ]
