"""Which errors a client sees as they are, and which are masked.

An error carries `extensions.code` when the client caused it: resolvers raise ApiError
with one; syntax, validation and variable errors get theirs here. Anything else is a
server fault: logged with its traceback and answered as INTERNAL_SERVER_ERROR, unless
it is the database being out of reach (the server answers SERVICE_UNAVAILABLE): that is
an outage, not a bug, and is logged as one warning line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import strawberry
from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.types import ExecutionContext

from comfygraph.schema.errors import (
    BAD_USER_INPUT,
    GRAPHQL_PARSE_FAILED,
    GRAPHQL_VALIDATION_FAILED,
    INTERNAL_SERVER_ERROR,
    TOO_MANY_TOKENS,
)

logger = logging.getLogger(__name__)
MASKED_MESSAGE = "Internal server error."


def error_code(error: GraphQLError) -> str | None:
    """The code `error` is answered with, or None when it is a server fault."""
    code = (error.extensions or {}).get("code")
    if code:
        return str(code)
    original = error.original_error
    if isinstance(error, GraphQLSyntaxError) or isinstance(original, GraphQLSyntaxError):
        return TOO_MANY_TOKENS if "tokens" in error.message else GRAPHQL_PARSE_FAILED
    if error.path is None:
        if original is None:  # e.g. an unknown operation name
            return GRAPHQL_VALIDATION_FAILED
        if error.message.startswith("Variable '$") or isinstance(original, GraphQLError):
            return BAD_USER_INPUT
    return None


def is_unexpected(error: GraphQLError) -> bool:
    return error_code(error) is None


def _masked(error: GraphQLError) -> GraphQLError:
    return GraphQLError(
        MASKED_MESSAGE,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={"code": INTERNAL_SERVER_ERROR},
    )


def finalize(errors: list[GraphQLError]) -> list[GraphQLError]:
    """Every error with a code; server faults masked. Idempotent."""
    done = []
    for error in errors:
        code = error_code(error)
        if code is None:
            done.append(_masked(error))
            continue
        if (error.extensions or {}).get("code") != code:
            error.extensions = {**(error.extensions or {}), "code": code}
        done.append(error)
    return done


class MaskUnexpected(MaskErrors):
    def __init__(self) -> None:
        super().__init__(should_mask_error=is_unexpected, error_message=MASKED_MESSAGE)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        return _masked(error)


class ErrorCodes(SchemaExtension):
    """Tags validation errors (whatever their cause) and then every remaining error."""

    def on_validate(self) -> Iterator[None]:
        yield
        for error in self.execution_context.pre_execution_errors or ():
            if not (error.extensions or {}).get("code"):
                error.extensions = {**(error.extensions or {}), "code": GRAPHQL_VALIDATION_FAILED}

    def on_operation(self) -> Iterator[None]:
        yield
        result: Any = self.execution_context.result
        if result is not None and getattr(result, "errors", None):
            result.errors = finalize(result.errors)


def _never(error: BaseException | None) -> bool:
    return False


class Schema(strawberry.Schema):
    """Logs server faults only (with the original traceback); client errors are not noise.
    `unavailable` says which faults are the database being down (db.unreachable: this
    layer knows no database)."""

    def __init__(
        self, *args: Any, unavailable: Callable[[BaseException | None], bool] = _never, **kw: Any
    ) -> None:
        super().__init__(*args, **kw)
        self.unavailable = unavailable

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        for error in errors:
            if is_unexpected(error) and self.unavailable(error.original_error):
                logger.warning(
                    "database unavailable at %s: %s",
                    ".".join(map(str, error.path or ())) or "(operation)",
                    _short(error.original_error),
                )
            elif is_unexpected(error):
                logger.error(
                    "unexpected error at %s: %s",
                    ".".join(map(str, error.path or ())) or "(operation)",
                    error.message,
                    exc_info=error.original_error,
                )
            else:
                logger.debug("client error %s: %s", error_code(error), error.message)


def _short(error: BaseException | None) -> str:
    """One line: the class and the first line of the message (no traceback)."""
    text = f"{type(error).__name__}: {error}" if error is not None else "(no cause)"
    return text.splitlines()[0][:200]
