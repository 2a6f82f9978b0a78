"""The outbox sender: any replica claims due deliveries (SKIP LOCKED, a short hold),
signs each with the `standardwebhooks` package and POSTs it. 2xx ends a delivery; 410
disables its endpoint; anything else is tried again after an exponential backoff with
jitter until WEBHOOK_RETRY_HOURS have passed. A replica that dies mid-delivery leaves
the row pending: its hold expires and another replica sends it (same webhook-id)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import orjson
from standardwebhooks.webhooks import Webhook

from comfygraph.db import webhooks as db
from comfygraph.domain.backoff import backoff as jittered
from comfygraph.studio.files import FileSigner
from comfygraph.studio.webhooks.payload import envelope, sign_urls
from comfygraph.studio.webhooks.policy import UnsafeUrl, WebhookPolicy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SenderConfig:
    retry_hours: float = 24.0
    backoff_initial: float = 10.0
    backoff_max: float = 3600.0
    timeout: float = 10.0
    poll_interval: float = 1.0
    concurrency: int = 16
    progress_seconds: float = 5.0
    hold_seconds: float = 40.0  # a claim's hold: longer than one attempt can take


def backoff(attempt: int, config: SenderConfig) -> float:
    """Seconds before attempt `attempt + 1`: doubling, capped, with +-50% jitter so that
    deliveries failed together do not return together."""
    return jittered(attempt, config.backoff_initial, config.backoff_max, jitter=(0.5, 1.5))


def message_id(delivery_id: uuid.UUID) -> str:
    return f"msg_{delivery_id.hex}"


def sign(secrets: list[str], msg_id: str, at: datetime, body: str) -> str:
    """The webhook-signature header: one `v1,...` per secret (a rotated-out secret still
    signs during its overlap), space-separated as the specification allows."""
    return " ".join(Webhook(s).sign(msg_id, at, body) for s in secrets)


@dataclass
class WebhookSender:
    pool: asyncpg.Pool
    policy: WebhookPolicy = field(default_factory=WebhookPolicy)
    config: SenderConfig = field(default_factory=SenderConfig)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _client: httpx.AsyncClient | None = None
    signer: FileSigner | None = None  # signs the payload's file URLs (None: sent as stored)

    def wake(self) -> None:
        self._wake.set()

    async def loop(self) -> None:
        """Run forever: keep up to `concurrency` deliveries in flight."""
        hold = max(self.config.hold_seconds, self.config.timeout + 1.0)
        inflight: set[asyncio.Task[None]] = set()
        try:
            while True:
                self._wake.clear()  # before the claim: a wake during it is not lost
                free = self.config.concurrency - len(inflight)
                if free > 0:
                    async with self.pool.acquire() as conn:
                        batch = await db.claim_due(conn, limit=free, hold_seconds=hold)
                    for row in batch:
                        task = asyncio.create_task(self._deliver(row))
                        inflight.add(task)
                        task.add_done_callback(inflight.discard)
                waits: set[asyncio.Future[Any]] = {asyncio.ensure_future(self._wake.wait())}
                if len(inflight) >= self.config.concurrency:  # full: wait for a free slot
                    waits |= {asyncio.ensure_future(asyncio.shield(t)) for t in inflight}
                _, pending = await asyncio.wait(
                    waits, timeout=self.config.poll_interval, return_when=asyncio.FIRST_COMPLETED
                )
                for waiter in pending:
                    waiter.cancel()
        finally:
            for task in inflight:
                task.cancel()
            if self._client is not None:
                await self._client.aclose()
                self._client = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.config.timeout),
                follow_redirects=False,  # a redirect is a failed attempt, never followed
                trust_env=False,
                limits=httpx.Limits(max_connections=self.config.concurrency * 2),
            )
        return self._client

    async def _deliver(self, row: asyncpg.Record) -> None:
        try:
            await self._attempt(row)
        except Exception:
            # The hold expires and the delivery is tried again; never lost.
            log.exception("webhook delivery %s failed unexpectedly", row["id"])

    async def _attempt(self, row: asyncpg.Record) -> None:
        delivery_id: uuid.UUID = row["id"]
        secrets = [s for s in (row["endpoint_secret"] or row["user_secret"],) if s]
        if row["previous_secret"]:
            secrets.append(row["previous_secret"])
        async with self.pool.acquire() as conn:
            subject = await db.subject_row(conn, row["subject_type"], row["subject_id"])
        if subject is None or not secrets:
            await self._finish(row, None, 0, "nothing to send (subject or secret gone)", b"",
                               "failed")  # fmt: skip
            return
        payload = envelope(row["event"], row["event_at"], row["subject_type"], subject, row["data"])
        if self.signer is not None:
            payload["data"] = sign_urls(payload["data"], row["subject_type"], subject, self.signer)
        body = orjson.dumps(payload).decode()
        started = time.monotonic()
        try:
            await self.policy.check_address(row["url"])
        except UnsafeUrl as exc:
            await self._finish(row, None, 0, str(exc), b"", "pending")
            return
        msg_id, now = message_id(delivery_id), datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "user-agent": "comfygraph-webhooks/1",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": sign(secrets, msg_id, now, body),
        }
        status: int | None = None
        location = "?"
        error: str | None = None
        answer = b""
        try:
            async with self._http().stream(
                "POST", row["url"], content=body.encode(), headers=headers
            ) as response:
                status = response.status_code
                location = response.headers.get("location", "?")
                async for chunk in response.aiter_bytes():
                    answer += chunk
                    if len(answer) >= db.RESPONSE_BODY_LIMIT:
                        break  # never more than 1 KiB kept (nor read much beyond it)
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__
        latency = int((time.monotonic() - started) * 1000)
        if status is not None and 200 <= status < 300:
            outcome = "delivered"
        elif status == 410 and row["endpoint_id"] is not None:
            async with self.pool.acquire() as conn:
                await db.disable_endpoint(conn, row["endpoint_id"], "the receiver answered 410")
            outcome = "failed"
        elif status == 410:
            outcome = "failed"
        else:
            if status is not None and 300 <= status < 400:
                error = f"redirect to {location} not followed"
            outcome = "pending"
        await self._finish(row, status, latency, error, answer, outcome)

    def _retry_at(self, row: asyncpg.Record) -> datetime | None:
        at = datetime.now(UTC) + timedelta(seconds=backoff(row["attempts"], self.config))
        if at > row["retry_since"] + timedelta(hours=self.config.retry_hours):
            return None
        return at

    async def _finish(
        self,
        row: asyncpg.Record,
        status: int | None,
        latency_ms: int,
        error: str | None,
        body: bytes,
        outcome: str,
    ) -> None:
        retry_at = self._retry_at(row) if outcome == "pending" else None
        if outcome == "pending" and retry_at is None:
            outcome = "failed"
        async with self.pool.acquire() as conn:
            await db.record_attempt(
                conn,
                row["id"],
                status_code=status,
                latency_ms=latency_ms,
                error=error,
                body=body,
                outcome=outcome,
                retry_at=retry_at,
            )
        if retry_at is not None:  # wake up for it (the poll would find it too, later)
            delay = (retry_at - datetime.now(UTC)).total_seconds()
            asyncio.get_running_loop().call_later(max(0.0, delay), self.wake)

    async def on_progress(self, kind: Any, job: asyncpg.Record, progress: float) -> None:
        """job.progress deliveries (throttled per job and target in SQL); `kind` is the
        job's OutputType."""
        async with self.pool.acquire() as conn:
            n = await db.enqueue_progress(
                conn,
                subject_type=str(getattr(kind, "value", kind)),
                job_id=job["id"],
                user_id=job["user_id"],
                one_off_url=job["webhook_url"],
                progress=progress,
                min_interval=self.config.progress_seconds,
            )
        if n:
            self.wake()
