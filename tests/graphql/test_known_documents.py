"""Known documents (server/known_documents.py): once a plan has answered a document,
later requests for it skip Strawberry's execute. Every check that reads the request
rather than the text must still run for them, and answer as the interpreter does: the
authentication gate, variable errors, NULs and the cost budget in variables, bad
cursors."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from comfygraph.db.jobs import create_job
from comfygraph.db.kinds import OutputType
from comfygraph.server.app import create_app
from comfygraph.server.settings import Settings
from comfygraph.studio.auth import issue_token
from tests.db.factories import make_user
from tests.servers import serve_in_thread

SECRET = "known-documents-secret-0123456789"
PAGE = """query Page($first: Int!, $after: String) {
  imageJobs(first: $first, after: $after) {
    edges { node { id status prompt public } }
    pageInfo { hasNextPage endCursor }
  }
}"""


@pytest.fixture(scope="module")
async def alice(pool: asyncpg.Pool) -> dict[str, Any]:
    async with pool.acquire() as conn:
        user = await make_user(conn)
        for i in range(5):
            await create_job(
                conn, OutputType.IMAGE, user_id=user["id"], workflow_name="product-image",
                parameters={"prompt": f"p{i}"}, prompt=f"p{i}",
            )  # fmt: skip
    return user


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory, dsn: str) -> Iterator[dict[str, Any]]:
    """Compiled plans on and off; anonymous requests refused; a small cost budget."""
    made: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        for name, compiled in (("compiled", True), ("interpreted", False)):
            settings = Settings(
                database_url=dsn, data_dir=Path(tmp_path_factory.mktemp(name)),
                jwt_secret=SECRET, compiled_queries=compiled, allow_anonymous=False,
                max_query_cost=500,
            )  # fmt: skip
            app = create_app(settings, dsn=dsn)
            view = next(r.endpoint for r in app.routes if getattr(r, "path", "") == "/graphql")
            made[name] = (stack.enter_context(serve_in_thread(app)), view)
        yield made


def _post(
    base: str, token: str | None, variables: dict[str, Any], name: str | None = "Page"
) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    body: dict[str, Any] = {"query": PAGE, "variables": variables}
    if name is not None:
        body["operationName"] = name
    return httpx.post(f"{base}/graphql", json=body, headers=headers, timeout=30)


def test_a_known_document_skips_strawberry_and_answers_alike(
    servers: dict[str, Any], alice: dict[str, Any]
) -> None:
    (on, view), (off, _) = servers["compiled"], servers["interpreted"]
    token = issue_token(SECRET, alice["id"], role="user")
    first = _post(on, token, {"first": 2})
    assert first.json()["data"]["imageJobs"]["edges"], first.text
    assert view.known.answered == 0  # the first request went through Strawberry
    again = _post(on, token, {"first": 2})
    assert view.known.answered == 1
    assert again.content == first.content == _post(off, token, {"first": 2}).content
    after = again.json()["data"]["imageJobs"]["pageInfo"]["endCursor"]
    page2 = _post(on, token, {"first": 2, "after": after})
    assert view.known.answered == 2
    assert page2.content == _post(off, token, {"first": 2, "after": after}).content
    assert page2.json()["data"]["imageJobs"]["edges"] != first.json()["data"]["imageJobs"]["edges"]


def test_a_document_sent_without_its_operation_name_is_known_too(
    servers: dict[str, Any], alice: dict[str, Any]
) -> None:
    """Clients (the bench, curl) often send no operationName for a one-operation
    document: that request is known under its text alone."""
    (on, view), (off, _) = servers["compiled"], servers["interpreted"]
    token = issue_token(SECRET, alice["id"], role="user")
    first = _post(on, token, {"first": 3}, name=None)
    before = view.known.answered
    again = _post(on, token, {"first": 3}, name=None)
    assert view.known.answered == before + 1
    assert again.content == first.content == _post(off, token, {"first": 3}, name=None).content


@pytest.mark.parametrize(
    ("case", "token", "variables", "code"),
    [
        ("anonymous", None, {"first": 2}, "UNAUTHENTICATED"),
        ("bad token", "not-a-token", {"first": 2}, "UNAUTHENTICATED"),
        ("bad variable", "alice", {"first": "two"}, None),
        ("missing variable", "alice", {}, None),
        ("NUL in a variable", "alice", {"first": 2, "after": "a\u0000b"}, "BAD_INPUT"),
        ("over the cost budget", "alice", {"first": 100}, "QUERY_TOO_COSTLY"),
        ("bad cursor", "alice", {"first": 2, "after": "bogus-cursor"}, "BAD_CURSOR"),
        ("out of range", "alice", {"first": 500}, None),
    ],
)
def test_requests_for_a_known_document_are_still_checked(
    servers: dict[str, Any],
    alice: dict[str, Any],
    case: str,
    token: str | None,
    variables: dict[str, Any],
    code: str | None,
) -> None:
    (on, view), (off, _) = servers["compiled"], servers["interpreted"]
    good = issue_token(SECRET, alice["id"], role="user")
    _post(on, good, {"first": 2})  # known from here on
    _post(on, good, {"first": 2})
    assert view.compiler.known, "the document should be known"
    bearer = good if token == "alice" else token
    before = view.known.answered
    a, b = _post(on, bearer, variables), _post(off, bearer, variables)
    assert a.status_code == b.status_code
    assert a.content == b.content, case
    assert view.known.answered == before  # Strawberry answered it
    errors = a.json()["errors"]
    assert errors, case
    if code is not None:
        assert errors[0]["extensions"]["code"] == code, errors


def test_a_document_in_use_stays_known_while_newer_ones_pass_the_bound(
    tmp_path: Path, dsn: str, alice: dict[str, Any]
) -> None:
    """Known documents are bounded least-recently-used first out: one requested between
    each of many new ones is never evicted by them (oldest-inserted first out evicted it
    once `maxsize` newer documents had come)."""
    settings = Settings(database_url=dsn, data_dir=tmp_path, jwt_secret=SECRET)
    app = create_app(settings, dsn=dsn)
    view = next(r.endpoint for r in app.routes if getattr(r, "path", "") == "/graphql")
    view.compiler.maxsize = 2
    token = issue_token(SECRET, alice["id"], role="user")
    with serve_in_thread(app) as base:
        assert _post(base, token, {"first": 2}).json()["data"]  # known from here on
        for i in range(2 * view.compiler.maxsize):
            before = view.known.answered
            assert _post(base, token, {"first": 2}).json()["data"]
            assert view.known.answered == before + 1, f"evicted after {i} newer documents"
            other = f"query Other{i} {{ imageJobs(first: 1) {{ edges {{ node {{ id }} }} }} }}"
            body = {"query": other, "operationName": f"Other{i}"}
            headers = {"authorization": f"Bearer {token}"}
            answer = httpx.post(f"{base}/graphql", json=body, headers=headers, timeout=30)
            assert answer.json()["data"]["imageJobs"]["edges"], answer.text
        assert len(view.compiler.known) == view.compiler.maxsize
