"""Automatic persisted queries: a hash alone is PERSISTED_QUERY_NOT_FOUND until the
query has been sent once with it; then the hash alone runs the query. A hash that is
not the query's, or a malformed extension, is refused with its own code."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from tests.graphql.client import GraphQLClient

QUERY = "{ jobs(first: 2) { pageInfo { hasNextPage } } }"
DIGEST = hashlib.sha256(QUERY.encode()).hexdigest()


def _post(client: GraphQLClient, body: dict[str, Any]) -> dict[str, Any]:
    r = client.http.post("/graphql", json=body)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _code(body: dict[str, Any]) -> str:
    return body["errors"][0]["extensions"]["code"]  # type: ignore[no-any-return]


def test_hash_then_query_then_hash(clients: dict[str, GraphQLClient]) -> None:
    alice = clients["alice"]
    apq = {"persistedQuery": {"version": 1, "sha256Hash": DIGEST}}
    assert _code(_post(alice, {"extensions": apq})) == "PERSISTED_QUERY_NOT_FOUND"
    first = _post(alice, {"query": QUERY, "extensions": apq})
    assert "errors" not in first
    again = _post(alice, {"extensions": apq})
    assert again == first


def test_mismatch_and_malformed(clients: dict[str, GraphQLClient]) -> None:
    alice = clients["alice"]
    wrong = {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}
    assert _code(_post(alice, {"query": QUERY, "extensions": wrong})) == (
        "PERSISTED_QUERY_HASH_MISMATCH"
    )
    for bad in ({"persistedQuery": "x"}, {"persistedQuery": {"version": 2, "sha256Hash": DIGEST}},
                {"persistedQuery": {"version": 1}}):  # fmt: skip
        assert _code(_post(alice, {"extensions": bad})) == "PERSISTED_QUERY_INVALID"


def test_hash_over_get(clients: dict[str, GraphQLClient]) -> None:
    """Apollo's GET form (`?extensions={...}` without `query`) is an operation, not a
    request for the GraphQL IDE (what a browser-like `accept: */*` GET used to get)."""
    alice = clients["alice"]
    query = "{ jobs(first: 3) { pageInfo { hasNextPage } } }"
    apq = orjson.dumps(
        {"persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(query.encode()).hexdigest()}}
    ).decode()

    def get(**params: str) -> dict[str, Any]:
        r = alice.http.get("/graphql", params=params, headers={"accept": "*/*"})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/json"), r.text[:200]
        return r.json()  # type: ignore[no-any-return]

    assert _code(get(extensions=apq)) == "PERSISTED_QUERY_NOT_FOUND"
    first = get(query=query, extensions=apq)
    assert "errors" not in first and "hasNextPage" in first["data"]["jobs"]["pageInfo"]
    assert get(extensions=apq) == first
