"""The per-request GraphQL context: who asks (the viewer), the application's services,
the API's limits, and the request's own DataLoaders and feeds (never shared between
requests)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import asyncpg
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from comfygraph.db.visibility import ANONYMOUS, Viewer
from comfygraph.resolvers.feeds import Feeds
from comfygraph.resolvers.loaders import Loaders
from comfygraph.resolvers.request_db import FairGate, RequestConnection
from comfygraph.schema.jobs import GenerationJob, JobOutput
from comfygraph.schema.pagination import CursorCodec
from comfygraph.schema.progress import JobProgress
from comfygraph.schema.sessions import Asset
from comfygraph.studio.auth import (
    AuthError,
    Claims,
    TokenVerifier,
    bearer_token,
    decode_token,
    issue_token,
    viewer_from_claims,
)
from comfygraph.studio.files import Grant
from comfygraph.studio.quota import usage as quota_usage
from comfygraph.studio.ratelimit import RateLimits
from comfygraph.studio.services import Services


@dataclass(frozen=True)
class Keys:
    """Secrets derived once per app: the JWT secret and the cursor signer keyed by it."""

    jwt_secret: str
    cursors: CursorCodec
    tokens: TokenVerifier

    @classmethod
    def from_secret(cls, secret: str) -> Keys:
        return cls(secret, CursorCodec(secret), TokenVerifier(secret))


@dataclass(frozen=True)
class ApiLimits:
    """The settings resolvers read (the server builds this from its Settings)."""

    allow_anonymous: bool
    token_ttl_seconds: int
    max_upload_bytes: int
    resync_jobs: int
    max_batch_count: int = 100
    retention_days: int | None = None
    storage_quota_bytes: int | None = None


def claims_from_header(secret: str | TokenVerifier, authorization: object) -> Claims | None:
    """The claims of the token an `Authorization` header carries (None without one);
    AuthError for a malformed, expired or wrongly signed token. A TokenVerifier
    remembers verified tokens until they expire."""
    token = bearer_token(authorization)
    if token is None:
        return None
    if isinstance(secret, TokenVerifier):
        return secret.verify(token)
    return decode_token(secret, token)


def viewer_from_header(secret: str | TokenVerifier, authorization: str | None) -> Viewer:
    """The viewer an `Authorization` header names, from the token alone (anonymous
    without one); the server also checks it against the user (studio/viewers.py)."""
    return viewer_from_claims(claims_from_header(secret, authorization))


@dataclass
class Context:
    request: Request | WebSocket
    response: Response | WebSocket | None
    services: Services
    keys: Keys
    limits: ApiLimits
    viewer: Viewer = ANONYMOUS
    auth_error: AuthError | None = None
    #: the viewer's token could not be checked: the database is down (SERVICE_UNAVAILABLE)
    database_down: bool = False
    connection_params: dict[str, Any] | None = field(default=None)
    #: first come, first served admission to the pool for requests (one per app)
    gate: FairGate | None = None
    #: when the viewer's token expires (a websocket ends its subscriptions then)
    token_expires_at: float | None = None
    rates: RateLimits | None = None

    @property
    def client_address(self) -> str | None:
        client = self.request.client
        return client.host if client is not None else None

    @property
    def pool(self) -> asyncpg.Pool:
        return self.services.pool

    @cached_property
    def db(self) -> RequestConnection:
        return RequestConnection(self.pool, lambda: self.viewer, self.gate)

    @cached_property
    def loaders(self) -> Loaders:
        return Loaders(self.db, self.viewer)

    async def storage_usage(self, user_id: uuid.UUID) -> tuple[int, int | None]:
        """(bytes the user stores, their quota or None) for User.storage*Bytes."""
        return await quota_usage(self.pool, user_id, self.limits.storage_quota_bytes)

    @cached_property
    def feeds(self) -> Feeds:
        return Feeds(self.db, self.viewer, self.keys.cursors)

    def signed(self, source: Any, value: Any) -> Any:
        """A URL field's value signed for this viewer (schema/files.py), the grant taken
        from the object the field belongs to."""
        grant, owner = _grant_of(source)
        return self._sign(grant, owner, value)

    def signed_job_row(self, row: Any, value: Any) -> Any:
        """`signed` for a job's row (the compiled path has rows, not GenerationJobs)."""
        return self._sign(Grant.job(row["id"], public=row["public"]), row["user_id"], value)

    def signed_asset_row(self, row: Any, value: Any) -> Any:
        """`signed` for an asset's row (the compiled path's Asset.url)."""
        return self._sign(Grant.session(row["session_id"]), None, value)

    def _sign(self, grant: Grant | None, owner: uuid.UUID | None, value: Any) -> Any:
        if grant is None or value is None:
            return value
        # Someone else's public job: signed for nobody in particular, so a URL reveals no
        # viewer (shared subscription streams hand one payload to many) and lasts while
        # the job stays public.
        viewer = self.viewer
        if grant.public and owner != viewer.user_id:
            viewer = ANONYMOUS
        return self.services.files.sign_all(value, grant, viewer)

    def sign_in(self, viewer: Viewer) -> None:
        """Change the viewer (a websocket's connection_init); loaders start afresh."""
        self.viewer = viewer
        self.__dict__.pop("loaders", None)
        self.__dict__.pop("feeds", None)

    def issue_token(self, user_id: uuid.UUID, *, role: str, version: int = 0) -> str:
        return issue_token(
            self.keys.jwt_secret,
            user_id,
            role=role,
            ttl=self.limits.token_ttl_seconds,
            version=version,
        )


def _grant_of(source: Any) -> tuple[Grant | None, uuid.UUID | None]:
    """The grant of a URL field's object, and the owner of the job it belongs to."""
    if isinstance(source, JobOutput | JobProgress):
        source = source.job
    if isinstance(source, GenerationJob):
        return Grant.job(source.uid, public=source.public), source.user_id
    if isinstance(source, Asset):
        return Grant.session(source.session_id), None
    return None, None
