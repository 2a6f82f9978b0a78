"""Bearer tokens: HS256 JWTs whose `sub` is the user's uuid (Supabase-style)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

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
    try:
        payload = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "exp"]}
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
    expires_at = float(exp) if isinstance(exp, int | float) else None
    return Claims(user_id, str(payload.get("role") or "user"), version, expires_at)


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
