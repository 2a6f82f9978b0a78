"""Hostile requests (issue 11): a query whose list fan-out multiplies, documents and
bodies too large to parse, NUL characters that PostgreSQL refuses. Each gets one clear
error with its code, quickly, and leaves nothing behind."""

from __future__ import annotations

import time

import httpx
import psutil

from tests.graphql.client import GraphQLClient, codes, gid
from tests.graphql.world import World

FAN_OUT = """{ sessions(first: 100) { edges { node { jobs(first: 100) { edges { node {
  ... on GenerationJob { session { jobs(first: 100) { edges { node { __typename } } } } } } } } }
} } }"""
FEED_PAGE = """{ jobs(first: 100) { edges { cursor node { __typename ... on GenerationJob {
  id status workflowName progress public createdAt parameters outputs { url kind }
  owner { id fullName } } } } pageInfo { hasNextPage endCursor } } }"""


def test_fan_out_is_refused_by_its_cost_before_it_runs(clients: dict[str, GraphQLClient]) -> None:
    alice = clients["alice"]
    started = time.perf_counter()
    body = alice.post(FAN_OUT)
    elapsed = time.perf_counter() - started
    assert codes(body) == ["QUERY_TOO_COSTLY"], body
    error = body["errors"][0]
    assert error["extensions"]["cost"] > error["extensions"]["budget"] == 20_000
    assert "data" not in body or body["data"] is None
    assert elapsed < 1.0  # (the server's part is well under 10 ms; bench/abuse.py measures)
    # Five aliased copies cost five times as much, and are refused the same way.
    aliased = "{" + " ".join(f"a{i}: " + FAN_OUT.strip()[1:-1] for i in range(5)) + "}"
    assert codes(alice.post(aliased)) == ["QUERY_TOO_COSTLY"]


def test_a_variable_page_size_is_costed_by_its_value(clients: dict[str, GraphQLClient]) -> None:
    query = """query($n: Int) { sessions(first: $n) { edges { node { jobs(first: $n) {
      edges { node { ... on GenerationJob { session { jobs(first: $n) {
      edges { node { __typename } } } } } } } } } } } }"""
    assert codes(clients["alice"].post(query, {"n": 100})) == ["QUERY_TOO_COSTLY"]
    assert "errors" not in clients["alice"].post(query, {"n": 5})


def test_an_ordinary_full_page_stays_within_budget(clients: dict[str, GraphQLClient]) -> None:
    assert len(clients["alice"].data(FEED_PAGE)["jobs"]["edges"]) > 0


def _padded(size: int, tag: int) -> bytes:
    """A tiny query padded with a comment to `size` bytes of JSON body."""
    query = "#" + "x" * (size - 80) + f"\n{{ __typename t{tag}: __typename }}"
    return httpx.Request("POST", "http://x", json={"query": query}).content


def test_oversized_document_and_body_get_413_with_a_graphql_error(base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=30) as http:
        r = http.post(
            "/graphql", content=_padded(200_000, 0), headers={"content-type": "application/json"}
        )
        assert r.status_code == 413
        assert codes(r.json()) == ["DOCUMENT_TOO_LARGE"]
        r = http.post(
            "/graphql", content=_padded(2_000_000, 0), headers={"content-type": "application/json"}
        )
        assert r.status_code == 413
        assert codes(r.json()) == ["PAYLOAD_TOO_LARGE"]
        assert http.post("/graphql", json={"query": "{ __typename }"}).status_code == 200


def test_fifty_padded_bodies_leave_memory_as_it_was(base_url: str) -> None:
    # The server runs in this process (tests/servers.py): its RSS is ours.
    me = psutil.Process()
    headers = {"content-type": "application/json"}
    with httpx.Client(base_url=base_url, timeout=60) as http:
        http.post("/graphql", content=_padded(900_000, 999), headers=headers)
        before = me.memory_info().rss
        for tag in range(50):
            size = 2_000_000 if tag % 2 else 900_000  # over the body limit / under it
            r = http.post("/graphql", content=_padded(size, tag), headers=headers)
            assert r.status_code == 413
        grown = me.memory_info().rss - before
    assert grown < 50 * 1024 * 1024, f"RSS grew by {grown / 2**20:.0f} MiB"


def test_nul_characters_are_bad_input(clients: dict[str, GraphQLClient]) -> None:
    alice = clients["alice"]
    cases = [
        ('{ jobByComfyId(comfyJobId: "a\\u0000b") { __typename } }', None),
        ("query($c: String!) { jobByComfyId(comfyJobId: $c) { __typename } }", {"c": "a\x00"}),
        (
            "query($f: JobFilter) { jobs(filter: $f) { edges { cursor } } }",
            {"f": {"workflowNames": ["x\x00"]}},
        ),
        (
            'mutation { login(email: "a\\u0000@b.c", password: "p") { token } }',
            None,
        ),
        (
            'mutation($p: JSON!) { submitJob(input: {workflowName: "txt2img", parameters: $p})'
            " { userErrors { code } } }",
            {"p": {"prompt": "hi\x00there"}},
        ),
    ]
    for query, variables in cases:
        body = alice.post(query, variables)
        assert codes(body) == ["BAD_INPUT"], (query, body)
    assert alice.data("{ __typename }") == {"__typename": "Query"}


OWNERS = """{ jobs(first: 100) { edges { node { ... on GenerationJob {
  owner { id email displayName } } } } } }"""


def test_owner_emails_are_shown_only_to_the_owner_and_admins(
    clients: dict[str, GraphQLClient], world: World
) -> None:
    emails = {gid("User", row["id"]): row["email"] for row in world.users.values()}
    seen = 0
    for name, client in clients.items():
        owners = [e["node"]["owner"] for e in client.data(OWNERS)["jobs"]["edges"]]
        owners = [o for o in owners if o is not None]
        seen += len(owners)
        for owner in owners:
            assert owner["displayName"]
            mine = name != "anonymous" and owner["id"] == gid("User", world.uid(name))
            if name == "admin" or mine:
                assert owner["email"] == emails[owner["id"]]
            else:
                assert owner["email"] == "", (name, owner)
    assert seen > 0
