"""A small GraphQL-over-HTTP client for the tests (real HTTP, real server)."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import httpx


class GraphQLClient:
    def __init__(self, base_url: str, token: str | None = None) -> None:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=base_url, headers=headers, timeout=30)

    def post(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The whole response body (data and errors); the HTTP status must be 200."""
        r = self.http.post("/graphql", json={"query": query, "variables": variables or {}})
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The data of a response that must have no errors."""
        body = self.post(query, variables)
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    def close(self) -> None:
        self.http.close()


def codes(body: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors", [])]


def gid(type_name: str, value: uuid.UUID) -> str:
    """The global id the server gives an object (its encoding is the server's business,
    but the tests need ids of rows they inserted)."""
    return base64.urlsafe_b64encode(f"{type_name}:{value}".encode()).rstrip(b"=").decode()


def row_id(global_id: str) -> uuid.UUID:
    raw = base64.urlsafe_b64decode(global_id + "=" * (-len(global_id) % 4)).decode()
    return uuid.UUID(raw.split(":", 1)[1])
