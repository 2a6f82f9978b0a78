"""Bad input is a GraphQL error with a clear code, never an internal error, and the
server keeps answering afterwards."""

from __future__ import annotations

import base64
import time
import uuid

import httpx
import jwt
import pytest

from comfygraph.schema.pagination import CursorCodec, CursorKind
from comfygraph.studio.auth import issue_token
from tests.graphql.client import GraphQLClient, codes, gid
from tests.graphql.conftest import SECRET
from tests.graphql.world import World

FEED = (
    "query($first: Int, $after: String) { jobs(first: $first, after: $after) { edges { cursor } } }"
)
SESSIONS = "query($after: String) { sessions(first: 1, after: $after) { edges { cursor } } }"


def _alive(client: GraphQLClient) -> None:
    assert client.data("{ __typename }") == {"__typename": "Query"}


def _refused(client: GraphQLClient, query: str, variables: dict | None, code: str) -> dict:
    body = client.post(query, variables)
    assert codes(body) and set(codes(body)) == {code}, body
    assert "Internal" not in str(body)
    _alive(client)
    return body


def _a_cursor(client: GraphQLClient) -> str:
    edges = client.data(FEED, {"first": 1})["jobs"]["edges"]
    assert edges
    return str(edges[0]["cursor"])


def _flip(cursor: str, index: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    raw[index] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


def test_tampered_and_foreign_cursors(clients: dict, world: World) -> None:
    alice = clients["alice"]
    good = _a_cursor(alice)
    for index in (3, 10, 20, -1):  # the timestamp, the id, the signature
        _refused(alice, FEED, {"after": _flip(good, index)}, "BAD_CURSOR")
    for junk in ("", "x", "!!!!", "a" * 500, good + "A", good[:-2], "bm90IGEgY3Vyc29y"):
        _refused(alice, FEED, {"after": junk}, "BAD_CURSOR")
    # A sessions cursor is no jobs cursor, and the other way round.
    session_cursor = alice.data(SESSIONS, {"after": None})["sessions"]["edges"][0]["cursor"]
    _refused(alice, FEED, {"after": session_cursor}, "BAD_CURSOR")
    _refused(alice, SESSIONS, {"after": good}, "BAD_CURSOR")
    # The same position signed by another server.
    other = CursorCodec("another-server-secret-0123456789")
    foreign = other.encode(CursorKind.JOBS, world.jobs[0][1]["created_at"], world.jobs[0][1]["id"])
    _refused(alice, FEED, {"after": foreign}, "BAD_CURSOR")


@pytest.mark.parametrize("first", [0, -1, 101, 1000, 2**31 - 1])
def test_page_size_limits(clients: dict, first: int) -> None:
    body = _refused(clients["alice"], FEED, {"first": first}, "INVALID_ARGUMENT")
    assert body["errors"][0]["extensions"]["argument"] == "first"


def test_ints_beyond_32_bits_are_bad_user_input(clients: dict) -> None:
    _refused(clients["alice"], FEED, {"first": 2**40}, "BAD_USER_INPUT")
    _refused(clients["alice"], "{ jobs(first: 99999999999) { totalCount } }", None,
             "GRAPHQL_VALIDATION_FAILED")  # fmt: skip


@pytest.mark.parametrize(
    "bad_id",
    ["", "nope", "%%%", "VmlkZW9Kb2I6bm90LWEtdXVpZA",  # VideoJob:not-a-uuid
     base64.b64encode(f"Planet:{uuid.uuid4()}".encode()).decode(),
     base64.b64encode(f"VideoJob:{uuid.uuid4()}".encode()).decode() + "==",  # not canonical
     "a" * 1000],
)  # fmt: skip
def test_malformed_global_ids(clients: dict, bad_id: str) -> None:
    alice = clients["alice"]
    _refused(alice, "query($id: ID!) { node(id: $id) { id } }", {"id": bad_id}, "INVALID_ID")
    _refused(alice, "query($id: ID!) { job(id: $id) { __typename } }", {"id": bad_id}, "INVALID_ID")
    _refused(alice, "query($id: ID!) { session(id: $id) { id } }", {"id": bad_id}, "INVALID_ID")
    _refused(alice, "query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": [bad_id]},
             "INVALID_ID")  # fmt: skip
    _refused(alice, "query($id: ID) { jobs(filter: {sessionId: $id}) { totalCount } }",
             {"id": bad_id}, "INVALID_ID")  # fmt: skip


def test_an_id_of_the_wrong_type(clients: dict, world: World) -> None:
    session_id = gid("Session", world.sessions["alice_1"]["id"])
    _refused(clients["alice"], "query($id: ID!) { job(id: $id) { __typename } }",
             {"id": session_id}, "INVALID_ID")  # fmt: skip
    _refused(clients["alice"], "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
             {"ids": [session_id] * 101}, "INVALID_ARGUMENT")  # fmt: skip


def _token_client(base_url: str, token: str) -> GraphQLClient:
    return GraphQLClient(base_url, token)


def test_bad_tokens_are_unauthenticated(base_url: str, world: World) -> None:
    uid = world.uid("alice")
    now = int(time.time())
    expired = jwt.encode({"sub": str(uid), "iat": now - 100, "exp": now - 10}, SECRET, "HS256")
    wrongly_signed = issue_token("some-other-secret-0123456789abcdef", uid)
    no_sub = jwt.encode({"exp": now + 60}, SECRET, "HS256")
    not_a_user = jwt.encode({"sub": "bob", "exp": now + 60}, SECRET, "HS256")
    for token in (expired, wrongly_signed, no_sub, not_a_user, "garbage", "a.b.c"):
        client = _token_client(base_url, token)
        body = client.post("{ me { id } jobs { totalCount } }")
        assert body["data"] is None and codes(body) == ["UNAUTHENTICATED"], body
        # Introspection and login stay open to a client holding a stale token.
        assert client.data("{ __typename }") == {"__typename": "Query"}
        client.close()
    weird = httpx.post(f"{base_url}/graphql", json={"query": "{ me { id } }"},
                       headers={"authorization": "Basic dXNlcjpwYXNz"})  # fmt: skip
    assert codes(weird.json()) == ["UNAUTHENTICATED"]


def _nested(depth: int) -> str:
    # jobs > edges > node > session > jobs > edges > node > session > ...
    inner = "edges { cursor }"
    for _ in range(depth // 4):
        inner = (
            f"edges {{ node {{ ... on GenerationJob {{ session {{ jobs {{ {inner} }} }} }} }} }}"
        )
    return f"{{ jobs {{ {inner} }} }}"


def test_too_deep(clients: dict) -> None:
    body = _refused(clients["alice"], _nested(30), None, "QUERY_TOO_DEEP")
    clients["alice"].data(_nested(8))  # 11 levels: allowed
    assert "depth" in body["errors"][0]["message"]
    # Introspection (GraphiQL's own deep query) is not counted.
    clients["alice"].data(
        "{ __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType "
        "{ ofType { ofType { name } } } } } } } } } } } }"
    )


def test_pathologically_deep_documents(clients: dict) -> None:
    deep = "{ me " + "{ id " * 2000 + "}" * 2001
    body = clients["alice"].post(deep)
    assert codes(body)[0] in {"QUERY_TOO_DEEP", "GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED"}
    _alive(clients["alice"])


def test_too_many_aliases(clients: dict) -> None:
    query = "{ " + " ".join(f"a{i}: __typename" for i in range(500)) + " }"
    _refused(clients["alice"], query, None, "TOO_MANY_ALIASES")
    fifty = "{ " + " ".join(f"a{i}: me {{ id }}" for i in range(50)) + " }"
    assert len(clients["alice"].data(fifty)) == 50


def test_too_many_tokens(clients: dict) -> None:
    query = "{ " + " ".join("__typename" for _ in range(5100)) + " }"
    _refused(clients["alice"], query, None, "TOO_MANY_TOKENS")


@pytest.mark.parametrize(
    ("query", "variables", "code"),
    [("{ jobs { ", None, "GRAPHQL_PARSE_FAILED"),
     ("{ nope }", None, "GRAPHQL_VALIDATION_FAILED"),
     ('{ jobs(filter: {createdAfter: "yesterday"}) { totalCount } }', None,
      "GRAPHQL_VALIDATION_FAILED"),
     ("query($f: JobFilter) { jobs(filter: $f) { totalCount } }",
      {"f": {"createdAfter": "not a time"}}, "BAD_USER_INPUT"),
     ("query($f: JobFilter) { jobs(filter: $f) { totalCount } }",
      {"f": {"statuses": ["DONE"]}}, "BAD_USER_INPUT"),
     ("query($first: Int) { jobs(first: $first) { totalCount } }", {"first": "ten"},
      "BAD_USER_INPUT"),
     ("query($id: ID!) { job(id: $id) { __typename } }", {}, "BAD_USER_INPUT")],
)  # fmt: skip
def test_malformed_documents_and_variables(
    clients: dict, query: str, variables: dict | None, code: str
) -> None:
    _refused(clients["alice"], query, variables, code)


def test_oversized_filters_and_strings(clients: dict) -> None:
    alice = clients["alice"]
    _refused(alice, "query($w: [String!]) { jobs(filter: {workflowNames: $w}) { totalCount } }",
             {"w": ["x"] * 101}, "INVALID_ARGUMENT")  # fmt: skip
    _refused(alice, "query($c: String!) { jobByComfyId(comfyJobId: $c) { __typename } }",
             {"c": "x" * 1000}, "INVALID_ARGUMENT")  # fmt: skip


def test_not_json_at_all(base_url: str, clients: dict) -> None:
    r = httpx.post(f"{base_url}/graphql", content=b"{not json",
                   headers={"content-type": "application/json"})  # fmt: skip
    assert r.status_code == 400
    _alive(clients["alice"])
