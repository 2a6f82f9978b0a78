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
    bare = parts.scheme == "memory"  # `memory://` names no place: it is this process
    if parts.scheme not in schemes or not (parts.netloc or parts.path or bare):
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

    # Scheduling (studio/scheduling.py, issue 13).
    #: a worker prefers a job with its last job's models among this many first ones (1: off)
    scheduler_affinity_window: int = Field(default=8, ge=1, le=100)
    #: a worker's /object_info is read again this often (and whenever it comes back)
    worker_capabilities_refresh: float = Field(default=60.0, gt=0)
    #: jobs one submitJob may create (`count`)
    max_batch_count: int = Field(default=100, ge=1, le=10000)

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

    # GraphiQL (server/graphiql.py).
    #: a folder holding GraphiQL's assets in unpkg's layout (react@18.2.0/umd/…,
    #: graphiql@3.8.3/…), served at /graphiql-assets instead of loading them from unpkg.com
    graphiql_assets_dir: Path | None = None
    #: a bearer token GraphiQL's Authorization header starts with (`--demo` sets the demo's)
    graphiql_token: str | None = None
    # Object storage (storage/) and file URLs (studio/files.py, server/files.py).
    #: S3-compatible endpoint (MinIO, R2, ...); unset: AWS S3 itself
    s3_endpoint_url: str | None = None
    #: the bucket's region; AWS_ACCESS_KEY_ID/SECRET/SESSION_TOKEN as the SDKs read them
    aws_region: str | None = Field(
        default=None, validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION")
    )
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = Field(default=None, repr=False)
    aws_session_token: str | None = Field(default=None, repr=False)
    #: a signed /files URL of a private file (an upload, a private job's output) lasts this
    file_url_ttl_seconds: int = Field(default=3600, ge=10, le=7 * 86400)
    #: ... and one of a public job's file this long (still refused once it is private)
    public_file_url_ttl_seconds: int = Field(default=7 * 86400, ge=10, le=366 * 86400)
    #: on S3, /files redirects to a presigned URL that lasts this long
    s3_presign_seconds: int = Field(default=300, ge=10, le=7 * 86400)
    # Signed webhooks (studio/webhooks/).
    #: a failed delivery is retried (exponential backoff with jitter) for this long
    webhook_retry_hours: float = Field(default=24.0, gt=0)
    #: job.progress is sent at most once per job and endpoint this often
    webhook_progress_seconds: float = Field(default=5.0, gt=0)
    #: webhook URLs may resolve to loopback/private/link-local/metadata addresses
    webhook_allow_private: bool = False
    #: hosts that may receive webhooks over plain http (comma-separated)
    webhook_allow_http_hosts: Annotated[tuple[str, ...], NoDecode] = ()
    #: one delivery attempt (connect to last byte)
    webhook_timeout: float = Field(default=10.0, gt=0, le=60)
    #: first retry delay, doubling per attempt up to an hour
    webhook_backoff_initial: float = Field(default=10.0, gt=0)
    #: look for due deliveries this often when nothing woke the sender
    webhook_poll_interval: float = Field(default=1.0, gt=0)
    #: deliveries one replica has in flight at once
    webhook_concurrency: int = Field(default=16, ge=1, le=256)

    #: store outputs with the metadata the worker embedded (PNG prompt/workflow, WebP EXIF)
    keep_output_metadata: bool = False
    #: every running session is settled this often (one replica at a time)
    session_settle_interval: float = Field(default=3.0, gt=0)
    # Retention and quotas (studio/retention.py, studio/quota.py).
    #: a finished job's stored files are deleted this many days later (unset: kept)
    retention_days: int | None = Field(default=None, gt=0)
    #: how often the retention sweeper looks for expired jobs
    retention_sweep_interval: float = Field(default=300.0, gt=0)
    #: bytes of outputs and uploads one user may store (unset: unlimited)
    storage_quota_bytes: int | None = Field(default=None, ge=0)
    # Compiled execution (resolvers/compiled): known queries run as cached plans.
    #: off: every query runs through the interpreter (to compare, or to rule it out)
    compiled_queries: bool = True
    #: asyncpg's session reset on every pool release (off: no round trip; db/pool.py)
    db_pool_full_reset: bool = False
    #: only documents registered with `comfygraph persist` run (HTTP, websockets, SSE)
    persisted_queries_only: bool = False
    #: one structured log line per HTTP request (server/access_log.py; `serve --access-log`)
    access_log: bool = False
    #: gc.set_threshold once started, as "N0,N1,N2" (server/gc_tuning.py; unset: the
    #: interpreter's, except under `serve`, which uses the measured SERVE_THRESHOLDS)
    gc_thresholds: Annotated[tuple[int, int, int] | None, NoDecode] = None
    #: gc.freeze() what start-up built (unset: no, except under `serve`)
    gc_freeze_at_start: bool = False
    # Abuse limits (issue 11): what one request may cost before anything runs.
    #: a GraphQL document longer than this (bytes) is refused before it is parsed
    max_document_bytes: int = Field(default=64 * 1024, ge=1024)
    #: the JSON body of a non-multipart request (bytes); over it: HTTP 413
    max_json_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    #: static cost budget of one operation (each list multiplies its children by its size)
    max_query_cost: int = Field(default=20_000, ge=1)
    #: a token's user (exists, not disabled, role, token version) is re-read this often (s)
    auth_cache_seconds: float = Field(default=5.0, ge=0)

    # Rate limits and quotas (studio/ratelimit.py): per user, then per client address.
    rate_submissions_per_minute: int = Field(default=120, ge=1)
    #: PENDING + PROCESSING jobs one user may have at once
    rate_active_jobs: int = Field(default=50, ge=1)
    rate_uploads_per_minute: int = Field(default=60, ge=1)
    rate_upload_bytes_per_day: int = Field(default=10 * 1024**3, ge=1)
    rate_logins_per_minute_per_address: int = Field(default=30, ge=1)
    rate_logins_per_minute_per_email: int = Field(default=10, ge=1)
    rate_anonymous_per_second: int = Field(default=50, ge=1)
    rate_admins_exempt: bool = True
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
    #: set by `serve --workers N` for its worker processes, whose DATABASE_URL is the
    #: parent's embedded server: their /healthz fails when the parent cannot restart it
    embedded_watched_by_parent: bool = False
    #: OTLP/HTTP collector base URL: traces are exported there when set (`otel` extra)
    otel_exporter_otlp_endpoint: str | None = None

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

    @field_validator("s3_endpoint_url")
    @classmethod
    def _s3_endpoint_url(cls, v: str | None) -> str | None:
        return _check_url(v, ("http", "https")).rstrip("/") if v else None

    @field_validator("public_base_url")
    @classmethod
    def _public_base_url(cls, v: str | None) -> str | None:
        return _check_url(v, ("http", "https")).rstrip("/") if v else None

    @field_validator("jwt_secret")
    @classmethod
    def _jwt_secret(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if len(v.encode()) < 32:
            raise ValueError("must be at least 32 bytes (e.g. `openssl rand -hex 32`)")
        if "change-me" in v.lower() or "changeme" in v.lower():
            raise ValueError("is a placeholder (change-me): set a random secret of 32+ bytes")
        return v

    @field_validator("webhook_allow_http_hosts", mode="before")
    @classmethod
    def _http_hosts(cls, v: Any) -> tuple[str, ...]:
        items = v if isinstance(v, tuple | list) else str(v or "").split(",")
        return tuple(h.strip().lower() for h in items if h.strip())

    @field_validator("gc_thresholds", mode="before")
    @classmethod
    def _gc_thresholds(cls, v: Any) -> tuple[int, int, int] | None:
        if v is None or isinstance(v, tuple | list):
            return tuple(v) if v is not None else None  # type: ignore[return-value]
        parts = [p.strip() for p in str(v).split(",") if p.strip()]
        if not parts:
            return None
        try:
            numbers = [int(p) for p in parts]
        except ValueError:
            raise ValueError(f"expected three integers like 10000,20,100, got {v!r}") from None
        if len(numbers) != 3 or numbers[0] < 1 or min(numbers) < 0:
            raise ValueError(f"expected three integers like 10000,20,100, got {v!r}")
        return (numbers[0], numbers[1], numbers[2])

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

    def check_shared_secret(self) -> None:
        """An external database may be shared by several replicas, and a token one of them
        signed must be good at every other: a secret generated per data dir is not."""
        if self.database_url and not self.jwt_secret:
            raise SettingsError(
                "JWT_SECRET is not set: with DATABASE_URL every replica must sign tokens "
                "with the same secret (32+ bytes, e.g. `openssl rand -hex 32`)"
            )

    def effective_jwt_secret(self) -> str:
        """JWT_SECRET, or one generated once and kept in the data dir (0600): embedded
        database and demo only (`check_shared_secret` refuses it with DATABASE_URL)."""
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
