"""What the client raises: GraphQL errors (with their codes) and mutation userErrors."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """The server answered with GraphQL errors; `codes` are their extensions.code."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        self.codes = [str((e.get("extensions") or {}).get("code", "")) for e in errors]
        pairs = zip(self.codes, errors, strict=True)
        super().__init__("; ".join(f"{c}: {e.get('message')}" for c, e in pairs))


class UserErrors(Exception):
    """A mutation refused its input: each item has field, code and message."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        self.codes = [e["code"] for e in errors]
        super().__init__("; ".join(f"{e['code']} {e.get('field')}: {e['message']}" for e in errors))
