"""PERSISTED_QUERIES_ONLY: documents registered with `comfygraph persist FILE...` run
(by hash or by their exact text); any other document is PERSISTED_QUERY_NOT_ALLOWED, an
unknown hash PERSISTED_QUERY_NOT_FOUND, and nothing registers itself through APQ."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from comfygraph.server.settings import Settings
from tests.graphql.client import GraphQLClient
from tests.graphql.conftest import SECRET
from tests.test_cli import comfygraph

REGISTERED = "query Feed { jobs(first: 2) { pageInfo { hasNextPage } } }\n"
OTHER = "{ jobs(first: 1) { pageInfo { hasNextPage } } }"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, dsn: str) -> Settings:
    data = Path(tmp_path_factory.mktemp("data"))
    return Settings(database_url=dsn, data_dir=data, jwt_secret=SECRET, persisted_queries_only=True)


def _post(client: GraphQLClient, body: dict[str, Any]) -> dict[str, Any]:
    r = client.http.post("/graphql", json=body)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _code(body: dict[str, Any]) -> str:
    return body["errors"][0]["extensions"]["code"]  # type: ignore[no-any-return]


def test_persist_then_only_registered_documents_run(
    clients: dict[str, GraphQLClient], dsn: str, tmp_path: Path
) -> None:
    alice = clients["alice"]
    apq = {"persistedQuery": {"version": 1, "sha256Hash": _digest(REGISTERED)}}
    assert _code(_post(alice, {"extensions": apq})) == "PERSISTED_QUERY_NOT_FOUND"
    assert _code(_post(alice, {"query": REGISTERED})) == "PERSISTED_QUERY_NOT_ALLOWED"

    doc = tmp_path / "feed.graphql"
    doc.write_text(REGISTERED)
    env = {"DATABASE_URL": dsn, "COMFYGRAPH_DATA_DIR": str(tmp_path)}
    done = comfygraph("persist", str(doc), env=env)
    assert done.returncode == 0, done.stderr
    assert f"{_digest(REGISTERED)}  {doc}" in done.stdout and "1 new" in done.stdout
    again = comfygraph("persist", str(doc), env=env)
    assert again.returncode == 0 and "0 new, 1 already registered" in again.stdout

    by_hash = _post(alice, {"extensions": apq})
    assert "errors" not in by_hash and "jobs" in by_hash["data"]
    assert _post(alice, {"query": REGISTERED}) == by_hash
    assert _post(alice, {"query": REGISTERED, "extensions": apq}) == by_hash

    # APQ registration is off: the text is refused and its hash stays unknown.
    other = {"persistedQuery": {"version": 1, "sha256Hash": _digest(OTHER)}}
    assert _code(_post(alice, {"query": OTHER, "extensions": other})) == (
        "PERSISTED_QUERY_NOT_ALLOWED"
    )
    assert _code(_post(alice, {"extensions": other})) == "PERSISTED_QUERY_NOT_FOUND"
    assert _code(_post(alice, {"query": OTHER, "extensions": apq})) == (
        "PERSISTED_QUERY_HASH_MISMATCH"
    )
    assert _code(_post(alice, {"extensions": {"persistedQuery": "x"}})) == (
        "PERSISTED_QUERY_INVALID"
    )


def test_persist_refuses_bad_files(dsn: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": dsn, "COMFYGRAPH_DATA_DIR": str(tmp_path)}
    bad = tmp_path / "bad.graphql"
    bad.write_text("query { jobs(first: ")
    for path, words in (
        (bad, "not a GraphQL document"),
        (tmp_path / "missing.graphql", "cannot read"),
    ):
        result = comfygraph("persist", str(path), env=env)
        assert result.returncode != 0
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0] and str(path) in lines[0], result.stderr
