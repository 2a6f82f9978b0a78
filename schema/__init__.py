"""The GraphQL schema: assembled here, types live in their own modules."""

from __future__ import annotations

import strawberry


@strawberry.type
class Query:
    @strawberry.field(description="The server's version.")
    def server_version(self) -> str:
        return "0.1.0"


def build_schema() -> strawberry.Schema:
    return strawberry.Schema(query=Query)
