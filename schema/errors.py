"""Error codes, the GraphQL error resolvers raise, and the UserError type of payloads.

Every error a client can cause carries `extensions.code`; anything else is masked
(see schema.error_policy). Mutations report expected failures as `userErrors`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import strawberry
from graphql import GraphQLError

# GraphQL errors (extensions.code)
UNAUTHENTICATED = "UNAUTHENTICATED"
FORBIDDEN = "FORBIDDEN"
INVALID_ID = "INVALID_ID"
BAD_CURSOR = "BAD_CURSOR"
INVALID_ARGUMENT = "INVALID_ARGUMENT"
BAD_USER_INPUT = "BAD_USER_INPUT"
NOT_IMPLEMENTED = "NOT_IMPLEMENTED"
GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
QUERY_TOO_DEEP = "QUERY_TOO_DEEP"
TOO_MANY_ALIASES = "TOO_MANY_ALIASES"
TOO_MANY_TOKENS = "TOO_MANY_TOKENS"
QUERY_TOO_COSTLY = "QUERY_TOO_COSTLY"
DOCUMENT_TOO_LARGE = "DOCUMENT_TOO_LARGE"
BAD_INPUT = "BAD_INPUT"
TOO_MANY_LOGINS = "TOO_MANY_LOGINS"
INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"

# userErrors[].code
NOT_FOUND = "NOT_FOUND"
NOT_CANCELLABLE = "NOT_CANCELLABLE"
INVALID_CREDENTIALS = "INVALID_CREDENTIALS"


class ApiError(GraphQLError):
    """An error the client caused (or may see): raised by resolvers, never masked."""

    def __init__(self, code: str, message: str, **extensions: Any) -> None:
        super().__init__(message, extensions={"code": code, **extensions})
        self.code = code


def invalid_argument(argument: str, message: str) -> ApiError:
    return ApiError(INVALID_ARGUMENT, message, argument=argument)


def unauthenticated(message: str = "sign in required") -> ApiError:
    return ApiError(UNAUTHENTICATED, message)


@strawberry.type
class UserError:
    field: list[str] | None = strawberry.field(
        description='Path to the offending input, e.g. ["parameters", "width"].'
    )
    message: str
    code: str = strawberry.field(
        description="Stable machine-readable code, e.g. UNKNOWN_WORKFLOW, INVALID_PARAMETER, "
        "NOT_CANCELLABLE."
    )
    retry_after_seconds: float | None = strawberry.field(
        default=None, description="With RATE_LIMITED: when to try again."
    )


def user_error(code: str, message: str, field: Sequence[str] | None = None) -> UserError:
    return UserError(code=code, message=message, field=list(field) if field else None)


RATE_LIMITED = "RATE_LIMITED"


def rate_limited(message: str, retry_after: float) -> UserError:
    return UserError(
        code=RATE_LIMITED, message=message, field=None, retry_after_seconds=retry_after
    )
