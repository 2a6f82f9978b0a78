"""The userError that the mutations still to come answer with."""

from __future__ import annotations

from schema.errors import NOT_IMPLEMENTED, UserError, user_error


def not_implemented(field: str) -> list[UserError]:
    return [user_error(NOT_IMPLEMENTED, f"{field} is not implemented yet")]
