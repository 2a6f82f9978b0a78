"""Every hostile request of issue 11, fired at a real server, with what it cost.

    python bench/abuse.py [--dsn DSN]

DSN: a database to use (default: DATABASE_URL, else database bench_abuse of an embedded
server under .data/bench). The server is the app under uvicorn in a separate process
(so its CPU time and RSS are its own), with the default settings except JWT_SECRET.
Users: alice (a session with 40 jobs), bob, an admin, a user deleted after signing in.

Prints a table: case, HTTP status (or websocket close code), error code, server CPU ms
(user + system of the server process during the case), RSS delta of the server (MiB).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
import websockets
from websockets.typing import Subprotocol

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from comfygraph.db.jobs import create_job  # noqa: E402
from comfygraph.db.kinds import OutputType  # noqa: E402
from comfygraph.db.migrate import apply_migrations  # noqa: E402
from comfygraph.db.pool import connect  # noqa: E402
from comfygraph.db.sessions import create_session  # noqa: E402
from comfygraph.db.users import create_user  # noqa: E402
from comfygraph.studio.auth import issue_token  # noqa: E402
from tests.graphql.client import gid  # noqa: E402
from tests.servers import free_port  # noqa: E402

SECRET = "bench-abuse-secret-0123456789abcdefghij"
FAN = """session(id: "SID") { jobs(first: 100) { edges { node { ... on GenerationJob {
  session { jobs(first: 100) { edges { node { ... on GenerationJob {
  session { jobs(first: 100) { edges { node { __typename } } } } } } } } } } } } } }"""


async def seed(dsn: str) -> dict[str, Any]:
    conn = await connect(dsn)
    try:
        await apply_migrations(conn)
        run = uuid.uuid4().hex[:6]
        users = {}
        for name, role, rounds in (("alice", "user", 12), ("bob", "user", 4),
                                   ("admin", "admin", 4), ("ghost", "user", 4),
                                   ("demoted", "admin", 4)):  # fmt: skip
            users[name] = await create_user(
                conn, email=f"{name}-{run}@example.com", password="correct horse",
                role=role, rounds=rounds,
            )  # fmt: skip
        session = await create_session(conn, user_id=users["alice"]["id"],
                                       user_product_prompt="a shoe")  # fmt: skip
        for i in range(40):
            await create_job(
                conn, OutputType.IMAGE, user_id=users["alice"]["id"],
                workflow_name="product-image", parameters={"prompt": f"p{i}"},
                session_id=session["id"], public=i % 2 == 0,
            )  # fmt: skip
        return {"users": users, "session": session}
    finally:
        await conn.close()


def start_server(dsn: str, port: int, data_dir: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": dsn, "JWT_SECRET": SECRET,
           "COMFYGRAPH_DATA_DIR": str(data_dir)}  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "server.factory:app_from_env", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
         "--no-access-log"],
        cwd=ROOT, env=env,
    )  # fmt: skip


class Meter:
    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.rows: list[tuple[str, str, str, float, float]] = []

    def _now(self) -> tuple[float, int]:
        t = self.proc.cpu_times()
        return t.user + t.system, self.proc.memory_info().rss

    async def case(self, name: str, fire: Any) -> None:
        cpu0, rss0 = self._now()
        try:
            status, code = await fire()
        except Exception as exc:  # a case that breaks is a finding too
            status, code = "error", type(exc).__name__
        await asyncio.sleep(0.05)  # let background tasks of the request finish
        cpu1, rss1 = self._now()
        self.rows.append(
            (name, str(status), str(code), (cpu1 - cpu0) * 1000, (rss1 - rss0) / 2**20)
        )

    def print(self) -> None:
        print(f"| {'case':<52} | status | {'code':<26} | CPU ms | RSS MiB |")
        print(f"|{'-' * 54}|--------|{'-' * 28}|--------|---------|")
        for name, status, code, cpu, rss in self.rows:
            print(f"| {name:<52} | {status:>6} | {code:<26} | {cpu:6.0f} | {rss:+7.1f} |")


def _codes(r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return "-"
    errors = body.get("errors") or []
    codes = [e.get("extensions", {}).get("code") for e in errors]
    if not codes and isinstance(body.get("data"), dict):
        for value in body["data"].values():
            if isinstance(value, dict) and value.get("userErrors"):
                ue = value["userErrors"]
                return f"{ue[0]['code']} x{len(ue)}"
    return ",".join(sorted({str(c) for c in codes})) or "ok"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dsn", default=os.environ.get("DATABASE_URL"))
    args = parser.parse_args()
    data_dir = ROOT / ".data" / "bench"
    dsn = args.dsn
    if dsn is None:
        from comfygraph.db.embedded import start_embedded
        from tests.dbutil import with_database

        admin = await asyncio.to_thread(start_embedded, data_dir)
        conn = await asyncpg.connect(admin)
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = 'bench_abuse'"):
            await conn.execute('CREATE DATABASE "bench_abuse"')
        await conn.close()
        dsn = with_database(admin, "bench_abuse")
    world = await seed(dsn)
    users = world["users"]
    tokens = {n: issue_token(SECRET, r["id"], role=r["role"]) for n, r in users.items()}
    port = free_port()
    server = start_server(dsn, port, data_dir / "abuse-files")
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=120) as http:
            for _ in range(600):
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            await run_cases(Meter(server.pid), http, base, dsn, world, tokens)
    finally:
        server.terminate()
        server.wait(10)


async def run_cases(
    meter: Meter, http: httpx.AsyncClient, base: str, dsn: str, world: dict, tokens: dict
) -> None:
    users = world["users"]

    def post(token: str | None, query: str, variables: Any = None, **kw: Any) -> Any:
        headers = {"authorization": f"Bearer {token}"} if token else {}

        async def fire() -> tuple[int, str]:
            r = await http.post("/graphql", json={"query": query, "variables": variables or {}},
                                headers=headers, **kw)  # fmt: skip
            return r.status_code, _codes(r)

        return fire

    def raw(body: bytes, token: str | None = None) -> Any:
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"

        async def fire() -> tuple[int, str]:
            try:
                r = await http.post("/graphql", content=body, headers=headers)
            except httpx.TransportError as exc:
                return 0, type(exc).__name__
            return r.status_code, _codes(r)

        return fire

    a = tokens["alice"]
    fan = FAN.replace("SID", gid("Session", world["session"]["id"]))
    await meter.case("fan-out session>jobs(100) x3 levels", post(a, "{" + fan + "}"))
    five = "{" + " ".join(f"a{i}: {fan}" for i in range(5)) + "}"
    await meter.case("fan-out, five aliased copies", post(a, five))
    await meter.case("subscription fan-out (graphql-transport-ws)", ws_sub(base, a))

    def padded(size: int, tag: int) -> bytes:
        q = "#" + "x" * (size - 80) + f"\n{{ t{tag}: __typename }}"
        return json.dumps({"query": q}).encode()

    await meter.case("20 MB comment-padded body, anonymous", raw(padded(20_000_000, 0)))
    await meter.case("900 KB comment-padded document", raw(padded(900_000, 1), a))

    async def fifty() -> tuple[int, str]:
        statuses = set()
        for i in range(50):
            status, _ = await raw(padded(2_000_000 if i % 2 else 900_000, 100 + i), a)()
            statuses.add(f"{status}")
        return int(max(statuses)), "x50"

    await meter.case("50 padded bodies (2 MB / 900 KB)", fifty)
    nul = "a\x00b"
    await meter.case(
        "NUL in jobByComfyId",
        post(a, "query($c: String!) { jobByComfyId(comfyJobId: $c) { __typename } }", {"c": nul}),
    )
    await meter.case("NUL in workflowNames filter", post(
        a, "query($f: JobFilter) { jobs(filter: $f) { totalCount } }",
        {"f": {"workflowNames": [nul]}}))  # fmt: skip
    submit = "mutation($i: SubmitJobInput!) { submitJob(input: $i) { userErrors { code } } }"
    await meter.case(
        "NUL in prompt",
        post(a, submit, {"i": {"workflowName": "product-image", "parameters": {"prompt": nul}}}),
    )
    await meter.case("NUL in idempotencyKey", post(
        a, submit, {"i": {"workflowName": "product-image", "parameters": {"prompt": "x"},
                          "idempotencyKey": nul}}))  # fmt: skip
    await meter.case("NUL in createSession", post(
        a, "mutation($i: CreateSessionInput!) { createSession(input: $i) { userErrors { code } } }",
        {"i": {"userProductPrompt": nul}}))  # fmt: skip
    login = (
        'mutation($e: String!) { login(email: $e, password: "x") { token userErrors { code } } }'
    )
    await meter.case("NUL in login email", post(None, login, {"e": nul}))
    deep_url = "http://127.0.0.1/files/" + "/".join("a" for _ in range(5000)) + "/x.png"
    await meter.case("file URL of 5,000 path segments", post(
        a, submit, {"i": {"workflowName": "img2img",
                          "parameters": {"image": deep_url, "prompt": "x"}}}))  # fmt: skip
    keys = {f"k{i}": 1 for i in range(60_000)}
    await meter.case(
        "60,000 unknown parameter keys",
        post(a, submit, {"i": {"workflowName": "product-image", "parameters": keys}}),
    )
    await meter.case("connection_init Authorization: 5", ws_init(base, 5))
    await meter.case("token with a non-UTF-8 header", post("__8.e30.x", "{ me { id } }"))
    # Tokens whose user changed after they were issued.
    conn = await asyncpg.connect(dsn)
    await conn.execute("UPDATE users SET deleted_at = now() WHERE id = $1", users["ghost"]["id"])
    await conn.execute("UPDATE users SET role = 'user' WHERE id = $1", users["demoted"]["id"])
    await conn.close()
    await asyncio.sleep(5.5)  # AUTH_CACHE_SECONDS
    await meter.case("deleted user's token, createSession", post(
        tokens["ghost"], "mutation { createSession(input: {userProductPrompt: \"x\"}) { "
        "userErrors { code } } }"))  # fmt: skip
    await meter.case("demoted admin's old token", post(tokens["demoted"], "{ me { role } }"))
    await meter.case("3 s token, websocket at exp", ws_expiry(base, users["bob"]["id"]))
    aliased = "mutation {" + " ".join(
        f'a{i}: login(email: "x{i}@example.com", password: "p") {{ token }}' for i in range(50)
    ) + "}"  # fmt: skip
    await meter.case("50 aliased logins", post(None, aliased))
    for label, emails in (("known", [users["alice"]["email"]] * 3),
                          ("unknown", [f"nobody{i}@example.com" for i in range(3)])):  # fmt: skip
        times = []

        async def three(emails: list[str] = emails, times: list[float] = times) -> tuple[int, str]:
            for email in emails:
                started = time.perf_counter()
                status, _ = await post(None, login, {"e": email})()
                times.append((time.perf_counter() - started) * 1000)
            return status, f"median {sorted(times)[1]:.0f} ms"

        await meter.case(f"3 logins, {label} email (wrong password)", three)
    for _ in range(11):
        await post(None, login, {"e": users["bob"]["email"]})()
    await meter.case(
        "12th login for one email in a minute", post(None, login, {"e": users["bob"]["email"]})
    )
    await meter.case(
        "anonymous owner { email }",
        post(
            None,
            "{ jobs(first: 5) { edges { node { ... on GenerationJob { owner { email } } } } } }",
        ),
    )

    async def flood() -> tuple[int, str]:
        rs = await asyncio.gather(*(http.post("/graphql", json={"query": "{ __typename }"})
                                    for _ in range(200)))  # fmt: skip
        limited = [r for r in rs if r.status_code == 429]
        return (429 if limited else 200), f"{len(limited)}/200 limited"

    await meter.case("200 anonymous requests at once", flood)
    meter.print()


def _init(authorization: Any) -> str:
    return json.dumps({"type": "connection_init", "payload": {"Authorization": authorization}})


def _subscribe(query: str) -> str:
    return json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}})


def _ws(base: str) -> str:
    return base.replace("http", "ws", 1) + "/graphql"


def ws_init(base: str, authorization: Any) -> Any:
    async def fire() -> tuple[int | None, str]:
        async with websockets.connect(
            _ws(base), subprotocols=[Subprotocol("graphql-transport-ws")]
        ) as ws:
            await ws.send(json.dumps({"type": "connection_init",
                                      "payload": {"Authorization": authorization}}))  # fmt: skip
            try:
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
            except websockets.ConnectionClosed as exc:
                return exc.rcvd.code if exc.rcvd else None, (exc.rcvd.reason if exc.rcvd else "-")
        return None, "open"

    return fire


def ws_sub(base: str, token: str) -> Any:
    query = ("subscription { jobUpdates { ... on GenerationJob { session { jobs(first: 100) {"
             " edges { node { ... on GenerationJob { session { jobs(first: 100) { edges { node {"
             " __typename } } } } } } } } } } } }")  # fmt: skip

    async def fire() -> tuple[str, str]:
        async with websockets.connect(
            _ws(base), subprotocols=[Subprotocol("graphql-transport-ws")]
        ) as ws:
            await ws.send(_init(f"Bearer {token}"))
            await ws.recv()
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
            frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
            codes = [e.get("extensions", {}).get("code") for e in frame.get("payload") or []]
            return frame["type"], ",".join(str(c) for c in codes)

    return fire


def ws_expiry(base: str, user_id: uuid.UUID) -> Any:
    async def fire() -> tuple[int | None, str]:
        token = issue_token(SECRET, user_id, ttl=3)
        started = time.perf_counter()
        async with websockets.connect(
            _ws(base), subprotocols=[Subprotocol("graphql-transport-ws")]
        ) as ws:
            await ws.send(_init(f"Bearer {token}"))
            await ws.send(_subscribe("subscription { jobUpdates { __typename } }"))
            try:
                while True:
                    await asyncio.wait_for(ws.recv(), 15)
            except websockets.ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else None
                return code, f"closed after {time.perf_counter() - started:.1f} s"
        return None, "open"

    return fire


if __name__ == "__main__":
    asyncio.run(main())
