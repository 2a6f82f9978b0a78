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
from comfygraph.resolvers.request_db import RequestConnection
from comfygraph.schema.pagination import CursorCodec
from comfygraph.studio.auth import (
    AuthError,
    bearer_token,
    decode_token,
    issue_token,
    viewer_from_claims,
)
from comfygraph.studio.services import Services


@dataclass(frozen=True)
class Keys:
    """Secrets derived once per app: the JWT secret and the cursor signer keyed by it."""

    jwt_secret: str
    cursors: CursorCodec

    @classmethod
    def from_secret(cls, secret: str) -> Keys:
        return cls(secret, CursorCodec(secret))


@dataclass(frozen=True)
class ApiLimits:
    """The settings resolvers read (the server builds this from its Settings)."""

    allow_anonymous: bool
    token_ttl_seconds: int
    max_upload_bytes: int
    resync_jobs: int
    max_batch_count: int = 100


def viewer_from_header(secret: str, authorization: str | None) -> Viewer:
    """The viewer an `Authorization` header names (anonymous without one); AuthError for
    a malformed, expired or wrongly signed token."""
    token = bearer_token(authorization)
    return ANONYMOUS if token is None else viewer_from_claims(decode_token(secret, token))


@dataclass
class Context:
    request: Request | WebSocket
    response: Response | WebSocket | None
    services: Services
    keys: Keys
    limits: ApiLimits
    viewer: Viewer = ANONYMOUS
    auth_error: AuthError | None = None
    connection_params: dict[str, Any] | None = field(default=None)

    @property
    def pool(self) -> asyncpg.Pool:
        return self.services.pool

    @cached_property
    def db(self) -> RequestConnection:
        return RequestConnection(self.pool)

    @cached_property
    def loaders(self) -> Loaders:
        return Loaders(self.db, self.viewer)

    @cached_property
    def feeds(self) -> Feeds:
        return Feeds(self.db, self.viewer, self.keys.cursors)

    def sign_in(self, viewer: Viewer) -> None:
        """Change the viewer (a websocket's connection_init); loaders start afresh."""
        self.viewer = viewer
        self.__dict__.pop("loaders", None)
        self.__dict__.pop("feeds", None)

    def issue_token(self, user_id: uuid.UUID, *, role: str) -> str:
        return issue_token(
            self.keys.jwt_secret, user_id, role=role, ttl=self.limits.token_ttl_seconds
        )
