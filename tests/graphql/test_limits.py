"""Login that reveals nothing (issue 11, finding 4), rate limits and quotas, emails only
for their owner (finding 7), and no weak JWT secret (finding 8). The server here has
small limits of its own; counters are in Redis when BROADCAST_URL is Redis, else in
PostgreSQL (the module's own database), so they start at zero."""

from __future__ import annotations

import io
import json
import statistics
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from PIL import Image

from comfygraph.db.users import create_user
from comfygraph.server.app import create_app
from comfygraph.server.settings import Settings, SettingsError, load_settings
from comfygraph.studio.auth import issue_token
from tests.db.factories import make_user
from tests.graphql.client import GraphQLClient, codes
from tests.graphql.conftest import SECRET
from tests.servers import serve_in_thread
from tests.test_cli import comfygraph

LOGIN = """mutation($e: String!, $p: String!) { login(email: $e, password: $p) {
  token userErrors { code message retryAfterSeconds } } }"""
SUBMIT = """mutation($input: SubmitJobInput!) { submitJob(input: $input) {
  job { ... on GenerationJob { id } } userErrors { code message retryAfterSeconds } } }"""
CANCEL = "mutation($id: ID!) { cancelJob(id: $id) { userErrors { code } } }"
UPLOAD = "mutation($file: Upload!) { uploadFile(file: $file) { url userErrors { code } } }"
RUN = uuid.uuid4().hex[:8]  # counters in Redis outlive a run: emails unique per run
PRODUCT = {"workflowName": "product-image", "parameters": {"prompt": "a shoe", "width": 256,
                                                             "height": 256}}  # fmt: skip


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory, dsn: str) -> Iterator[str]:
    settings = Settings(
        database_url=dsn,
        data_dir=Path(tmp_path_factory.mktemp("data")),
        jwt_secret=SECRET,
        rate_logins_per_minute_per_email=3,
        rate_logins_per_minute_per_address=1000,
        rate_submissions_per_minute=3,
        rate_active_jobs=2,
        rate_uploads_per_minute=1,
        rate_anonymous_per_second=5,
    )
    with serve_in_thread(create_app(settings, dsn=dsn)) as url:
        yield url


@pytest.fixture(scope="module")
async def caller(pool: asyncpg.Pool, base_url: str) -> GraphQLClient:
    """A signed-in client, so the logins below are not held to the anonymous limit."""
    async with pool.acquire() as conn:
        row = await make_user(conn)
    return GraphQLClient(base_url, issue_token(SECRET, row["id"]))


def _login(client: GraphQLClient, email: str, password: str) -> dict:
    return client.data(LOGIN, {"e": email, "p": password})["login"]  # type: ignore[no-any-return]


async def test_login_costs_the_same_for_known_and_unknown_emails(
    pool: asyncpg.Pool, caller: GraphQLClient
) -> None:
    async with pool.acquire() as conn:  # cost 12, as real users have
        row = await create_user(conn, email=f"timing-{RUN}@example.com", password="right password")
    client = caller
    # Each email gets at most 3 logins a minute here: two per address, two rounds.
    known, unknown = [], []
    for round_ in range(2):
        for email, times in ((row["email"], known), (f"nobody{round_}-{RUN}@example.com", unknown)):
            started = time.perf_counter()
            answer = _login(client, email, "wrong password")
            times.append(time.perf_counter() - started)
            assert answer["userErrors"][0]["code"] == "INVALID_CREDENTIALS"
    ratio = statistics.median(known) / statistics.median(unknown)
    assert 0.6 < ratio < 1.6, (known, unknown)  # main: ~12x (cost 12 against cost 4)


def test_one_login_per_operation(caller: GraphQLClient) -> None:
    aliased = "mutation {" + " ".join(
        f'a{i}: login(email: "x{i}@example.com", password: "p") {{ token }}' for i in range(50)
    ) + "}"  # fmt: skip
    started = time.perf_counter()
    body = caller.post(aliased)
    assert codes(body) == ["TOO_MANY_LOGINS"]
    assert time.perf_counter() - started < 1.0  # no bcrypt ran


def test_logins_per_email_are_rate_limited(caller: GraphQLClient) -> None:
    client = caller
    for _ in range(3):
        assert _login(client, f"target-{RUN}@example.com", "guess")["userErrors"][0]["code"] == (
            "INVALID_CREDENTIALS"
        )
    error = _login(client, f"TARGET-{RUN}@example.com", "guess")["userErrors"][0]
    assert error["code"] == "RATE_LIMITED" and 0 < error["retryAfterSeconds"] <= 60


async def test_submissions_and_active_jobs_are_limited(pool: asyncpg.Pool, base_url: str) -> None:
    async with pool.acquire() as conn:
        row = await make_user(conn)
    client = GraphQLClient(base_url, issue_token(SECRET, row["id"]))
    ids = []
    for _ in range(2):
        payload = client.data(SUBMIT, {"input": PRODUCT})["submitJob"]
        assert payload["userErrors"] == [], payload
        ids.append(payload["job"]["id"])
    busy = client.data(SUBMIT, {"input": PRODUCT})["submitJob"]["userErrors"]
    assert [e["code"] for e in busy] == ["RATE_LIMITED"] and "pending" in busy[0]["message"]
    assert client.data(CANCEL, {"id": ids[0]})["cancelJob"]["userErrors"] == []
    # The third submission of the minute, refused above, still counted: the fourth is over.
    over = client.data(SUBMIT, {"input": PRODUCT})["submitJob"]["userErrors"]
    assert [e["code"] for e in over] == ["RATE_LIMITED"] and over[0]["retryAfterSeconds"] > 0


async def test_admins_are_exempt(pool: asyncpg.Pool, base_url: str) -> None:
    async with pool.acquire() as conn:
        row = await make_user(conn, role="admin")
    client = GraphQLClient(base_url, issue_token(SECRET, row["id"], role="admin"))
    for _ in range(4):
        assert client.data(SUBMIT, {"input": PRODUCT})["submitJob"]["userErrors"] == []


async def test_uploads_per_minute_are_limited(pool: asyncpg.Pool, base_url: str) -> None:
    async with pool.acquire() as conn:
        row = await make_user(conn)
    png = io.BytesIO()
    Image.new("RGB", (4, 4)).save(png, "PNG")
    headers = {"authorization": f"Bearer {issue_token(SECRET, row['id'])}"}

    def upload() -> list[str]:
        r = httpx.post(
            f"{base_url}/graphql",
            headers=headers,
            data={"operations": json.dumps({"query": UPLOAD, "variables": {"file": None}}),
                  "map": json.dumps({"0": ["variables.file"]})},
            files={"0": ("a.png", png.getvalue(), "image/png")},
        )  # fmt: skip
        return [e["code"] for e in r.json()["data"]["uploadFile"]["userErrors"]]

    assert upload() == []
    assert upload() == ["RATE_LIMITED"]


@pytest.mark.parametrize("path", ["/graphql", "/graphql/stream"])
def test_anonymous_requests_per_address_get_429(base_url: str, path: str) -> None:
    sse = {"accept": "text/event-stream"}  # (ignored by /graphql)
    with httpx.Client(base_url=base_url) as http:
        answers = [
            http.post(path, json={"query": "{ __typename }"}, headers=sse) for _ in range(12)
        ]
    limited = [r for r in answers if r.status_code == 429]
    assert limited, [r.status_code for r in answers]
    error = limited[0].json()["errors"][0]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert error["extensions"]["retryAfterSeconds"] >= 1
    assert int(limited[0].headers["retry-after"]) >= 1


def test_weak_or_placeholder_jwt_secrets_are_refused(tmp_path: Path) -> None:
    for secret in ("x" * 31, "change-me-to-a-long-random-secret", "ä" * 15):
        with pytest.raises(SettingsError, match="JWT_SECRET"):
            load_settings(jwt_secret=secret, data_dir=tmp_path)
    assert load_settings(jwt_secret="y" * 32, data_dir=tmp_path).jwt_secret
    env = {"JWT_SECRET": "change-me-to-a-long-random-secret", "COMFYGRAPH_DATA_DIR": str(tmp_path)}
    result = comfygraph("serve", env=env)
    assert result.returncode != 0 and "JWT_SECRET" in result.stderr
    assert "change-me" not in (Path(__file__).parents[2] / "docker-compose.yml").read_text()
