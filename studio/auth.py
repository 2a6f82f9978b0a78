"""Bearer tokens: HS256 JWTs whose `sub` is the user's uuid (Supabase-style)."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt

from comfygraph.db.visibility import ANONYMOUS, Viewer

ALGORITHM = "HS256"


class AuthError(Exception):
    """A token was presented and is not acceptable; `code` is the GraphQL error code."""

    def __init__(self, message: str, code: str = "UNAUTHENTICATED") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Claims:
    user_id: uuid.UUID
    role: str
    #: the user's token_version when the token was issued (0 for tokens without one)
    version: int = 0
    #: when the token expires (seconds since the epoch)
    expires_at: float | None = None


def issue_token(
    secret: str, user_id: uuid.UUID, *, role: str = "user", ttl: int = 3600, version: int = 0
) -> str:
    now = int(time.time())
    payload = {"sub": str(user_id), "role": role, "iat": now, "exp": now + ttl, "ver": version}
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


def decode_token(secret: str, token: str) -> Claims:
    return _decode(secret, token)[0]


def _decode(key: Any, token: str) -> tuple[Claims, float]:
    """Claims and expiry (epoch seconds) of a valid token; AuthError otherwise."""
    try:
        payload = jwt.decode(
            token, key, algorithms=[ALGORITHM], options={"require": ["sub", "exp"]}
        )
    except jwt.ExpiredSignatureError:
        raise AuthError("token expired") from None
    except jwt.InvalidTokenError:
        # PyJWT's own wording (codec errors, header details) is not for clients.
        raise AuthError("invalid token") from None
    try:
        user_id = uuid.UUID(str(payload["sub"]))
    except ValueError:
        raise AuthError("invalid token") from None
    version = payload.get("ver", 0)
    exp = payload.get("exp")
    if not isinstance(version, int) or isinstance(version, bool):
        raise AuthError("invalid token")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise AuthError("invalid token")
    claims = Claims(user_id, str(payload.get("role") or "user"), version, float(exp))
    return claims, float(exp)


class TokenVerifier:
    """decode_token with the secret prepared once and each verified token remembered
    until it expires (a client sends the same token on every request; verifying it is
    an HMAC and a JSON parse each time). Bounded: the oldest entries go first."""

    def __init__(
        self, secret: str, *, maxsize: int = 10_000, clock: Callable[[], float] = time.time
    ) -> None:
        self.secret = secret
        self.maxsize = maxsize
        self.clock = clock
        self._key = jwt.api_jws.get_algorithm_by_name(ALGORITHM).prepare_key(secret)
        self._verified: OrderedDict[str, tuple[Claims, float]] = OrderedDict()

    def verify(self, token: str) -> Claims:
        hit = self._verified.get(token)
        if hit is not None:
            if self.clock() < hit[1]:
                return hit[0]
            del self._verified[token]
        claims, expires = _decode(self._key, token)
        self._verified[token] = (claims, expires)
        if len(self._verified) > self.maxsize:
            self._verified.popitem(last=False)
        return claims


def bearer_token(header: object) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None when absent."""
    if header is None or header == "":
        return None
    if not isinstance(header, str):
        raise AuthError("Authorization must be a string 'Bearer <token>'")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("Authorization header must be 'Bearer <token>'")
    return token.strip()


def viewer_from_claims(claims: Claims | None) -> Viewer:
    if claims is None:
        return ANONYMOUS
    return Viewer(user_id=claims.user_id, is_admin=claims.role == "admin")
