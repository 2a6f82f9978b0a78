"""Typed settings from the environment (CONTRACT.md), refused at start when unsafe.

The CLI builds Settings once and passes it down; tests build their own. Nothing here
reads the environment at import time.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class SettingsError(Exception):
    """A bad setting; the message is one line naming the variable."""


@dataclass(frozen=True)
class WorkerSpec:
    url: str
    price_per_hour: float | None = None


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "comfygraph"


def _check_url(value: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not (parts.netloc or parts.path):
        raise ValueError(f"expected a {'/'.join(schemes)} URL, got {value!r}")
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    database_url: str | None = None
    data_dir: Path = Field(
        default_factory=_default_data_dir,
        validation_alias=AliasChoices("COMFYGRAPH_DATA_DIR", "data_dir"),
    )
    broadcast_url: str | None = None
    comfy_workers: Annotated[tuple[WorkerSpec, ...], NoDecode] = ()
    storage_url: str | None = None
    public_base_url: str | None = None
    jwt_secret: str | None = None
    workflows_dir: Path | None = None
    allow_anonymous: bool = True

    # Limits and timeouts (STYLE habit 10): every resource bounded, all from here.
    db_pool_min: int = Field(default=2, ge=1)
    db_pool_max: int = Field(default=10, ge=1)
    db_command_timeout: float = Field(default=30.0, gt=0)
    db_connect_timeout: float = Field(default=10.0, gt=0)
    max_upload_bytes: int = Field(default=50 * 1024 * 1024, gt=0)
    job_timeout_seconds: float = Field(default=3600.0, gt=0)
    lease_seconds: float = Field(default=30.0, gt=0)
    jwt_ttl_seconds: int = Field(default=3600, gt=0)

    # ComfyUI workers (comfy/workers.py, studio/runner.py).
    #: prompts this replica keeps on one worker: one running, the rest queued there
    worker_capacity: int = Field(default=2, ge=1, le=64)
    #: GET /system_stats and /queue on every worker this often
    worker_health_interval: float = Field(default=5.0, gt=0)
    #: one HTTP request to a worker (connecting: at most 5 s of it)
    worker_request_timeout: float = Field(default=10.0, gt=0)
    #: a worker that answered nothing (HTTP or websocket) this long is unavailable
    worker_unavailable_after: float = Field(default=30.0, gt=0)
    #: how often the dispatcher looks for pending jobs when nothing woke it
    dispatch_poll_interval: float = Field(default=1.0, gt=0)
    #: runs of a job its worker lost before it fails (per-workflow requeueLost may say 1)
    job_max_attempts: int = Field(default=2, ge=1, le=10)

    # The event bus (bus/).
    #: events waiting for one slow subscriber (progress ticks coalesce; status never drops)
    bus_queue_size: int = Field(default=256, ge=8)
    #: a publish the broker has not taken within this counts as refused (then retried)
    bus_publish_timeout: float = Field(default=10.0, gt=0)

    # The loop supervisor (studio/supervisor.py).
    #: first restart delay of a failed loop; doubles per failure in a row up to the max
    loop_backoff_initial: float = Field(default=0.5, gt=0)
    loop_backoff_max: float = Field(default=30.0, gt=0)
    #: /readyz reports a loop that failed this many times in a row ...
    loop_failing_after: int = Field(default=3, ge=1)
    #: ... until it has stayed up this long
    loop_healthy_after: float = Field(default=60.0, gt=0)

    # Websockets (server/realtime).
    #: a client must send connection_init within this
    ws_connection_init_timeout: float = Field(default=3.0, gt=0, le=60)
    #: graphql-transport-ws "ping" / graphql-ws "ka" to every connection this often
    ws_keepalive_interval: float = Field(default=15.0, gt=0)
    #: frames waiting to be written to one socket; a subscription that needs more is ended
    ws_send_queue: int = Field(default=256, ge=8)
    ws_max_subscriptions: int = Field(default=100, ge=1)
    #: websocket_connections.last_heartbeat_at is refreshed (one statement) this often
    ws_heartbeat_interval: float = Field(default=30.0, gt=0)
    #: queue positions of followed PENDING jobs are re-read (one statement) this often
    ws_queue_poll_interval: float = Field(default=2.0, gt=0)
    #: after a lost broadcast link, jobUpdates sends this many newest matching jobs again
    ws_resync_jobs: int = Field(default=20, ge=0, le=200)
    #: identical subscriptions share one execution and one payload (off: one each, to compare)
    ws_share_streams: bool = True
    #: with this many websockets open, long-lived objects are kept out of the cyclic GC's
    #: full collections (server/realtime/gcpolicy.py); 0 turns that off
    ws_gc_freeze_connections: int = Field(default=500, ge=0)

    # Many hosts (issue 12): no event lost in a broker outage, stalled workers, the
    # embedded database supervised.
    #: a publish the broker refused is retried (in order per channel) for this long
    bus_publish_retry_seconds: float = Field(default=300.0, gt=0)
    #: events waiting for the broker in all; beyond it the oldest are given up (and resynced)
    bus_publish_backlog: int = Field(default=10_000, ge=1)
    #: a running job whose worker shows no change this long is interrupted and re-queued
    #: once (then failed); a template's "stallSeconds" overrides it
    stall_seconds: float = Field(default=120.0, gt=0)
    #: the embedded postmaster is checked (and restarted when dead) this often
    embedded_check_interval: float = Field(default=2.0, gt=0)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, v: str | None) -> str | None:
        return _check_url(v, ("postgres", "postgresql")) if v else None

    @field_validator("broadcast_url")
    @classmethod
    def _broadcast_url(cls, v: str | None) -> str | None:
        return _check_url(v, ("memory", "postgres", "postgresql", "redis", "rediss")) if v else None

    @field_validator("storage_url")
    @classmethod
    def _storage_url(cls, v: str | None) -> str | None:
        return _check_url(v, ("file", "s3")) if v else None

    @field_validator("public_base_url")
    @classmethod
    def _public_base_url(cls, v: str | None) -> str | None:
        return _check_url(v, ("http", "https")).rstrip("/") if v else None

    @field_validator("jwt_secret")
    @classmethod
    def _jwt_secret(cls, v: str | None) -> str | None:
        if v is not None and len(v) < 16:
            raise ValueError("must be at least 16 characters")
        return v

    @field_validator("comfy_workers", mode="before")
    @classmethod
    def _workers(cls, v: Any) -> tuple[WorkerSpec, ...]:
        if isinstance(v, tuple | list):
            return tuple(v)
        return parse_workers(str(v or ""))

    # -- derived values ---------------------------------------------------------------
    @property
    def embedded(self) -> bool:
        return self.database_url is None

    def effective_broadcast_url(self) -> str:
        if self.broadcast_url:
            return self.broadcast_url
        return "memory://" if self.embedded else str(self.database_url)

    def effective_storage_url(self) -> str:
        return self.storage_url or f"file://{self.data_dir / 'files'}"

    def effective_jwt_secret(self) -> str:
        """JWT_SECRET, or one generated once and kept in the data dir (0600)."""
        if self.jwt_secret:
            return self.jwt_secret
        path = self.data_dir / "jwt_secret"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600, exist_ok=True)
            if not path.read_text().strip():
                path.write_text(secrets.token_urlsafe(48))
        return path.read_text().strip()


def parse_workers(raw: str) -> tuple[WorkerSpec, ...]:
    """`http://a:8188,http://b:8188@1.20` -> workers, the second priced at $1.20/hour."""
    specs = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        url, _, price = item.rpartition("@") if "@" in item.split("//", 1)[-1] else (item, "", "")
        url = _check_url(url.rstrip("/"), ("http", "https"))
        cost = None
        if price:
            try:
                cost = float(price)
            except ValueError:
                raise ValueError(f"price of {url} is not a number: {price!r}") from None
            if cost < 0:
                raise ValueError(f"price of {url} is negative")
        specs.append(WorkerSpec(url, cost))
    return tuple(specs)


_ENV_NAMES = {"data_dir": "COMFYGRAPH_DATA_DIR"}


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment; a bad value raises SettingsError naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else "settings"
        name = _ENV_NAMES.get(field, field.upper())
        message = err["msg"].removeprefix("Value error, ")
        raise SettingsError(f"invalid {name}: {message}") from None
