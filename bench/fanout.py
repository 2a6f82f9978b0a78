"""Live progress fan-out over websockets: one server process, many subscribers.

    python bench/fanout.py [--dsn ADMIN_DSN] [--redis URL] [--scenario a1 a10 b m10 floor]
                           [--seconds 15] [--no-share] [--pin] [--subscribers N]

The server is `comfygraph serve` in its own process (uvicorn + uvloop, as deployed),
with BROADCAST_URL on Redis. The load runs in another process: a minimal websocket
client (asyncio protocol, no per-message task) so the load side is not the bottleneck.
Ticks are published on the broadcast directly by this process, exactly as the
progress runner publishes them (`comfy.events.JobEvents.progress`: channel job:{id},
coalescing key "progress"); each tick carries its publish time in previewUrl, so a
client measures publish -> receive latency (same machine, same wall clock).

Scenarios (jobs are public; subscribers are anonymous viewers, graphql-transport-ws):
  a1   1,000 subscribers over 1,000 running jobs, each job ticking 1/s
  a10  10,000 subscribers over the same 1,000 jobs (10 per job), 1/s each
  b    5,000 subscribers all following one job ticking 5/s
Reported: deliveries/s, latency p50/p99/max, server CPU, and the server's RSS growth
per idle subscription (connected, subscribed, first state received, no ticks).
--no-share starts the server with WS_SHARE_STREAMS=false (one execution per subscriber).
--pin puts the server alone on CPU 0 and the load and ticks on CPU 1 (2-vCPU machine).

Measured (issue 14, `--scenario b a10 --seconds 5`, 2 vCPUs shared with other test runs,
so read CPU per delivery = server CPU / deliveries, which load moves least):
  b, before (every delivery through the ASGI send): 24,870 deliveries/s, p50 127 ms,
    p99 273 ms, server CPU 79%: 32 us per delivery; idle 32.6 KB/subscription.
  b, after (server/realtime/wire.py: one frame per event and operation id, written
    straight to the socket): 24,824/s, p50 55 ms, p99 119 ms, CPU 54%: 22 us per
    delivery; idle 33.4 KB/subscription (unchanged). A second, busier round: 39 us
    before (it fell behind: 12,840/s) vs 20-22 us after, with or without the GC policy.
  a10 saturated on this busy machine before and after (5,320 and 6,969 of 10,000/s;
    server CPU 59% and 64%): there the cost is the 1,000 executions per second (one per
    job and tick), not the deliveries.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing as mp
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import percentile
from comfygraph.bus import EventBus
from comfygraph.db.jobs import create_job
from comfygraph.db.kinds import OutputType
from comfygraph.db.migrate import apply_migrations
from comfygraph.db.pool import connect
from comfygraph.db.users import create_user
from tests.dbutil import create_database, drop_database
from tests.servers import free_port

SECRET = "bench-secret-0123456789abcdef-0123456789"  # JWT_SECRET needs 32+ bytes
QUERY = """subscription($id: ID!) { jobProgress(id: $id) {
  status progress node nodeProgress { value max } etaSeconds previewUrl
  job { ... on GenerationJob { id status progress workflowName } } } }"""
MARK = b'"previewUrl":"bench:'


# ---------------------------------------------------------------- the load process


@dataclass
class Load:
    latencies: list[float] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    frames: int = 0
    ready: int = 0
    errors: int = 0
    measuring: bool = False
    all_ready: asyncio.Event = field(default_factory=asyncio.Event)
    expected: int = 0


def _frame(opcode: int, data: bytes) -> bytes:
    """A client frame: masked with a zero key (valid, and XOR with zeros is free)."""
    n = len(data)
    if n < 126:
        head = bytes([0x80 | opcode, 0x80 | n])
    elif n < 65536:
        head = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + n.to_bytes(8, "big")
    return head + b"\0\0\0\0" + data


class Client(asyncio.Protocol):
    def __init__(self, load: Load, host: str, jobs: list[str]) -> None:
        self.load, self.host, self.jobs = load, host, jobs
        self.buf = b""
        self.open = False
        self.waiting = {f'{{"id":"{n}","type":"next"'.encode() for n in range(1, len(jobs) + 1)}
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            (
                f"GET /graphql HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
            ).encode()
        )

    def send_json(self, message: dict[str, Any]) -> None:
        assert self.transport is not None
        self.transport.write(_frame(1, orjson.dumps(message)))

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        if not self.open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            if b" 101 " not in buf[: buf.find(b"\r\n")]:
                self.load.errors += 1
                assert self.transport is not None
                self.transport.close()
                return
            self.open = True
            buf = buf[end + 4 :]
            self.send_json({"type": "connection_init", "payload": {}})
        pos, size = 0, len(buf)
        while size - pos >= 2:
            opcode, n = buf[pos] & 0x0F, buf[pos + 1] & 0x7F
            start = pos + 2
            if n == 126:
                if size - pos < 4:
                    break
                n, start = int.from_bytes(buf[pos + 2 : pos + 4], "big"), pos + 4
            elif n == 127:
                if size - pos < 10:
                    break
                n, start = int.from_bytes(buf[pos + 2 : pos + 10], "big"), pos + 10
            if size - start < n:
                break
            self.on_frame(opcode, buf[start : start + n])
            pos = start + n
        self.buf = buf[pos:]

    def on_frame(self, opcode: int, payload: bytes) -> None:
        if opcode == 9:  # websocket ping (uvicorn's keep-alive)
            assert self.transport is not None
            self.transport.write(_frame(10, payload))
            return
        if opcode != 1:
            return
        load = self.load
        if payload.startswith(b'{"id":"') and b'"type":"next"' in payload[:40]:
            mark = payload.find(MARK)
            if mark >= 0 and load.measuring:
                end = payload.find(b'"', mark + len(MARK))
                now = time.time()
                load.latencies.append(now - float(payload[mark + len(MARK) : end]))
                load.times.append(now)
                load.frames += 1
            if self.waiting:
                self.waiting.discard(payload[: payload.find(b'"type":"next"') + 13])
                if not self.waiting:
                    load.ready += 1
                    if load.ready >= load.expected:
                        load.all_ready.set()
        elif b'"connection_ack"' in payload:
            for n, job in enumerate(self.jobs, start=1):
                self.send_json(
                    {"id": str(n), "type": "subscribe",
                     "payload": {"query": QUERY, "variables": {"id": job}}}
                )  # fmt: skip
        elif b'"type":"ping"' in payload:
            self.send_json({"type": "pong"})
        else:
            load.errors += 1


async def _load_main(pipe: Connection, host: str, port: int, job_ids: list[list[str]]) -> None:
    loop = asyncio.get_running_loop()
    load = Load(expected=len(job_ids))
    clients: list[Client] = []
    address = f"{host}:{port}"
    batch = 250
    for start in range(0, len(job_ids), batch):
        made = await asyncio.gather(
            *(
                loop.create_connection(partial(Client, load, address, jobs), host, port)
                for jobs in job_ids[start : start + batch]
            )
        )
        clients += [protocol for _transport, protocol in made]
    async with asyncio.timeout(120):
        await load.all_ready.wait()
    pipe.send(("ready", load.ready, load.errors))
    while True:
        command = await asyncio.to_thread(pipe.recv)
        if command == "measure":
            load.latencies.clear()
            load.times.clear()
            load.frames = 0
            load.measuring = True
        elif command == "report":
            load.measuring = False
            pipe.send(("report", load.frames, load.latencies, load.errors, load.times))
        elif command == "close":
            for client in clients:
                if client.transport is not None:
                    client.transport.close()
            pipe.send(("closed",))
            return


def load_process(pipe: Connection, host: str, port: int, job_ids: list[list[str]]) -> None:
    if cpu := os.environ.get("FANOUT_LOAD_CPU"):
        os.sched_setaffinity(0, {int(cpu)})
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_load_main(pipe, host, port, job_ids))


# ---------------------------------------------------------------- the floor


def _sink(port: int, count: int, cpu: str | None) -> None:
    """Connect `count` sockets that read and discard (the floor's other process)."""
    if cpu:
        os.sched_setaffinity(0, {int(cpu)})

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for start in range(0, count, 500):
            await asyncio.gather(
                *(loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
                  for _ in range(min(500, count - start)))
            )  # fmt: skip
        await asyncio.sleep(3600)

    asyncio.run(run())


async def floor(count: int, pin: bool) -> None:
    """What one process pays just to write one small message to each of `count` sockets
    (uvloop transports, no Python websocket code): the floor under scenario b."""
    if pin:
        os.sched_setaffinity(0, {0})
    connected: list[asyncio.Transport] = []
    ready = asyncio.Event()

    class Accept(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            connected.append(transport)
            if len(connected) == count:
                ready.set()

    server = await asyncio.get_running_loop().create_server(Accept, "127.0.0.1", 0, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    sink = mp.get_context("spawn").Process(
        target=_sink, args=(port, count, "1" if pin else None), daemon=True
    )
    sink.start()
    await ready.wait()
    message = b"\x81\x7e\x01\x90" + b"x" * 400  # a 400-byte websocket text frame
    walls = []
    for _ in range(20):
        start = time.perf_counter()
        for transport in connected:
            transport.write(message)
        walls.append((time.perf_counter() - start) * 1e6 / count)
        await asyncio.sleep(0.2)
    each = percentile(walls, 50)
    print(f"floor {count} sockets: one write each takes {each:.1f} us (p50 of 20 rounds; "
          f"max {max(walls):.1f} us): {each * count / 1000:.0f} ms per event for the last socket",
          flush=True)  # fmt: skip
    sink.terminate()
    server.close()


# ---------------------------------------------------------------- the orchestrator


def gid(type_name: str, value: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{value}".encode()).rstrip(b"=").decode()


async def make_jobs(dsn: str, count: int) -> list[uuid.UUID]:
    conn = await connect(dsn)
    try:
        await apply_migrations(conn)
        user = await create_user(
            conn, email=f"bench-{uuid.uuid4().hex[:8]}@example.com", password="benchpass",
            rounds=4,
        )  # fmt: skip
        ids = []
        for i in range(count):
            row, _ = await create_job(
                conn, OutputType.IMAGE, user_id=user["id"], workflow_name="img2img",
                parameters={"i": i}, public=True, status="processing", progress=1,
            )  # fmt: skip
            ids.append(row["id"])
        return ids
    finally:
        await conn.close()


def start_server(dsn: str, redis_url: str, port: int, share: bool) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "BROADCAST_URL": redis_url,
        "JWT_SECRET": SECRET,
        "COMFY_WORKERS": "",
        "COMFYGRAPH_DATA_DIR": str(Path("/tmp") / f"fanout-{port}"),
        "WS_SHARE_STREAMS": "true" if share else "false",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "comfygraph.server.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=str(Path(__file__).resolve().parents[1]),
    )


async def wait_ready(url: str, within: float = 60) -> None:
    async with httpx.AsyncClient() as client, asyncio.timeout(within):
        while True:
            try:
                if (await client.get(f"{url}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)


async def tick_loop(
    bus: EventBus, jobs: list[uuid.UUID], rate: float, seconds: float, stats: dict[str, int]
) -> None:
    """Each job ticks `rate` times a second, spread evenly over time."""
    interval = 0.005
    per_second = len(jobs) * rate
    loop = asyncio.get_running_loop()
    start = loop.time()
    sent, index, value = 0, 0, 0
    while (now := loop.time()) - start < seconds:
        while sent < (now - start) * per_second:
            sent += 1
            job = jobs[index % len(jobs)]
            index += 1
            value = (value + 1) % 1000
            event = {
                "type": "progress", "id": str(job), "kind": "image", "status": "processing",
                "progress": min(99.0, 1 + value / 10), "node": "5", "classType": "KSampler",
                "value": value % 20, "max": 20, "eta": 12.5,
                "previewUrl": f"bench:{time.time():.6f}",
            }  # fmt: skip
            await bus.publish(f"job:{job}", event, coalesce="progress")
            stats["published"] += 1
        await asyncio.sleep(max(0.0, interval - (loop.time() - now)))


async def scenario(
    name: str, url: str, server: psutil.Process, bus: EventBus, jobs: list[uuid.UUID],
    subscribers: int, rate: float, seconds: float, per_connection: int = 1,
) -> dict[str, Any]:  # fmt: skip
    host, port = url.removeprefix("http://").split(":")
    followed = [gid("ImageJob", jobs[i % len(jobs)]) for i in range(subscribers)]
    targets = [followed[i : i + per_connection] for i in range(0, subscribers, per_connection)]
    rss_before = server.memory_info().rss
    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(
        target=load_process, args=(child, host, int(port), targets), daemon=True
    )
    proc.start()
    reply = await asyncio.to_thread(parent.recv)
    assert reply[0] == "ready", reply
    await asyncio.sleep(1.0)  # let the server settle (connection log flushed)
    rss_idle = server.memory_info().rss
    stats = {"published": 0}
    ticking = asyncio.create_task(tick_loop(bus, jobs, rate, seconds + 2, stats))
    await asyncio.sleep(2.0)  # warm-up: not measured
    parent.send("measure")
    loader = psutil.Process(proc.pid)
    me = psutil.Process()
    cpu0, t0 = server.cpu_times(), time.monotonic()
    lcpu0, mcpu0 = loader.cpu_times(), me.cpu_times()
    await asyncio.sleep(seconds)
    parent.send("report")
    reply = await asyncio.to_thread(parent.recv)
    cpu1, t1 = server.cpu_times(), time.monotonic()
    lcpu1, mcpu1 = loader.cpu_times(), me.cpu_times()
    await ticking
    _, frames, latencies, errors, times = reply
    parent.send("close")
    await asyncio.to_thread(parent.recv)
    proc.join(10)
    elapsed = t1 - t0
    ms = [x * 1000 for x in latencies] or [0.0]
    result = {
        "scenario": name,
        "subscribers": subscribers,
        "connections": len(targets),
        "deliveries_per_s": frames / elapsed,
        "expected_per_s": subscribers * rate,
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms),
        "server_cpu": ((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)) / elapsed,
        "load_cpu": ((lcpu1.user + lcpu1.system) - (lcpu0.user + lcpu0.system)) / elapsed,
        "ticker_cpu": ((mcpu1.user + mcpu1.system) - (mcpu0.user + mcpu0.system)) / elapsed,
        "kb_per_idle_subscription": (rss_idle - rss_before) / subscribers / 1024,
        "errors": errors,
        "published_per_s": stats["published"] / (seconds + 2),
    }
    if os.environ.get("FANOUT_TIMELINE"):
        worst: dict[int, float] = {}
        for at, latency in zip(times, latencies, strict=True):
            second = int(at)
            worst[second] = max(worst.get(second, 0.0), latency * 1000)
        print("  worst latency per second (ms):", [round(worst[k]) for k in sorted(worst)])
    print(
        f"{name:4} {subscribers:6} subs on {len(targets):6} sockets: "
        f"{result['deliveries_per_s']:8,.0f} deliveries/s "
        f"(of {result['expected_per_s']:,.0f} ticks x subscribers)  "
        f"latency p50 {result['p50_ms']:6.1f} ms  p99 {result['p99_ms']:6.1f} ms  "
        f"max {result['max_ms']:6.1f} ms  CPU server {result['server_cpu']:.0%} "
        f"load {result['load_cpu']:.0%} ticker {result['ticker_cpu']:.0%}  "
        f"idle {result['kb_per_idle_subscription']:.1f} KB/subscription  errors {errors}  "
        f"(published {result['published_per_s']:,.0f}/s)",
        flush=True,
    )
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--dsn", default=os.environ.get(
        "DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))  # fmt: skip
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--scenario", nargs="*", default=["a1", "a10", "b"])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--no-share", action="store_true")
    parser.add_argument("--subscribers", type=int, help="override the scenario's count")
    parser.add_argument("--pin", action="store_true", help="server on CPU 0, the rest on CPU 1")
    args = parser.parse_args()
    if "floor" in args.scenario:
        await floor(args.subscribers or 5000, args.pin)
        args.scenario.remove("floor")
        if not args.scenario:
            return

    dsn = await create_database(args.dsn, "fanout")
    try:
        jobs = await make_jobs(dsn, 1000)
        plans = {
            # name: (subscribers, followed jobs, ticks per job per second, subscriptions per socket)
            "a1": (1000, jobs, 1.0, 1),
            "a10": (10_000, jobs, 1.0, 1),
            "b": (5000, jobs[:1], 5.0, 1),
            "m10": (10_000, jobs, 1.0, 10),  # memory: 10 subscriptions per socket
        }
        async with EventBus.from_url(args.redis) as bus:
            for name in args.scenario:
                subscribers, followed, rate, per_connection = plans[name]
                subscribers = args.subscribers or subscribers
                # A fresh server per scenario: its memory figure is its own.
                port = free_port()
                url = f"http://127.0.0.1:{port}"
                server = start_server(dsn, args.redis, port, share=not args.no_share)
                try:
                    await wait_ready(url)
                    process = psutil.Process(server.pid)
                    if args.pin:  # the server alone on CPU 0; load and ticks on CPU 1
                        process.cpu_affinity([0])
                        os.sched_setaffinity(0, {1})
                        os.environ["FANOUT_LOAD_CPU"] = "1"
                    print(f"server pid {server.pid} at {url}", flush=True)
                    await asyncio.sleep(1.0)
                    await scenario(name, url, process, bus, followed, subscribers, rate,
                                   args.seconds, per_connection)  # fmt: skip
                finally:
                    server.terminate()
                    server.wait(30)
    finally:
        await asyncio.sleep(0.5)
        try:
            await drop_database(args.dsn, dsn)
        except asyncpg.PostgresError as exc:
            print(f"could not drop {dsn}: {exc}", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
