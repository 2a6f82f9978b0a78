"""No N+1: a feed page asking for every job's owner and session costs the same number
of SQL statements for 20 rows as for 100, counted on the wire by a proxy in front of
PostgreSQL (tests/graphql/pgproxy.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from comfygraph.server.app import create_app
from comfygraph.server.settings import Settings
from comfygraph.studio.auth import issue_token
from tests.graphql.client import GraphQLClient
from tests.graphql.conftest import SECRET
from tests.graphql.pgproxy import StatementCounter
from tests.graphql.world import World, build_world
from tests.servers import serve_in_thread

PAGE = """
query Page($first: Int!) {
  jobs(first: $first, filter: {scope: ALL}) {
    edges { node { ... on GenerationJob {
      id workflowName status createdAt queuePosition
      owner { id email }
      session { id status owner { email } }
    } } }
    pageInfo { hasNextPage endCursor }
  }
}"""


@pytest.fixture(scope="module")
async def world(pool: asyncpg.Pool) -> World:
    async with pool.acquire() as conn:
        return await build_world(conn, jobs=130)


@pytest.fixture(scope="module")
def counted(
    dsn: str, world: World, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[StatementCounter, GraphQLClient]]:
    counter = StatementCounter(dsn)
    # One pooled connection: a request never meets a fresh connection's first-use
    # statements (type introspection), so the count is exact.
    with counter.running() as proxied:
        settings = Settings(database_url=proxied, data_dir=Path(tmp_path_factory.mktemp("d")),
                            jwt_secret=SECRET, db_pool_min=1, db_pool_max=1)  # fmt: skip
        admin = world.users["admin"]
        token = issue_token(SECRET, admin["id"], role="admin")
        with serve_in_thread(create_app(settings, dsn=proxied)) as url:
            client = GraphQLClient(url, token)
            yield counter, client
            client.close()


def _cost(counter: StatementCounter, client: GraphQLClient, first: int) -> int:
    before = counter.statements
    edges = client.data(PAGE, {"first": first})["jobs"]["edges"]
    after = counter.statements
    assert len(edges) == first
    assert all(e["node"]["owner"] for e in edges)
    assert any(e["node"]["session"] for e in edges)
    return after - before


def test_statement_count_does_not_grow_with_the_page(counted) -> None:  # type: ignore[no-untyped-def]
    counter, client = counted
    _cost(counter, client, 5)  # warm: statement caches, type introspection
    # The proxy also sees the app's background loops (webhook and dispatch polls) and
    # an expired viewer-cache lookup: they only add, so the least of three is the page's.
    small = min(_cost(counter, client, 20) for _ in range(3))
    large = min(_cost(counter, client, 100) for _ in range(3))
    print(f"SQL statements for a page of 20: {small}, of 100: {large}")
    # The feed, the owners, the sessions (whose owners are cached already), the queue
    # positions: one statement each, whatever the page size.
    assert small == large == 4


def test_a_pool_release_costs_no_round_trip(counted) -> None:  # type: ignore[no-untyped-def]
    """asyncpg's reset (`pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`, a
    simple-protocol Query) is not sent: request connections keep no session state. With
    one pooled connection, each request waits for the previous one's release. A request
    sends two simple Queries of its own: the BEGIN that sets the row-level security role
    and viewer, and the COMMIT."""
    counter, client = counted
    client.data(PAGE, {"first": 5})
    before = counter.snapshot()["Q"]
    for _ in range(3):
        client.data(PAGE, {"first": 5})
    assert counter.snapshot()["Q"] == before + 3 * 2
