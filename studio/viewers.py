"""A token's claims checked against the users table: the user must still exist, be
neither deleted nor disabled, and have the token version the token was issued with
(role and password changes and `revoke-tokens` move it on). The role comes from the
table, not from the token.

One lookup per user per `ttl` seconds (a small in-process cache), so a request costs
no statement in the common case; a change is seen everywhere within `ttl`.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass

import asyncpg

from comfygraph.db.users import auth_state
from comfygraph.db.visibility import ANONYMOUS, Viewer
from comfygraph.studio.auth import AuthError, Claims


@dataclass(frozen=True)
class _State:
    role: str
    version: int


class ViewerCheck:
    def __init__(self, *, ttl: float = 5.0, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        self._cache: OrderedDict[uuid.UUID, tuple[float, _State | None]] = OrderedDict()

    async def viewer(self, pool: asyncpg.Pool, claims: Claims | None) -> Viewer:
        """The viewer the claims name; AuthError when the token no longer holds."""
        if claims is None:
            return ANONYMOUS
        state = await self._state(pool, claims.user_id)
        if state is None:
            raise AuthError("invalid token: the user does not exist or is disabled")
        if claims.version != state.version:
            raise AuthError("token revoked: sign in again")
        return Viewer(user_id=claims.user_id, is_admin=state.role == "admin")

    def forget(self, user_id: uuid.UUID) -> None:
        self._cache.pop(user_id, None)

    async def _state(self, pool: asyncpg.Pool, user_id: uuid.UUID) -> _State | None:
        now = time.monotonic()
        cached = self._cache.get(user_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        async with pool.acquire() as conn:
            row = await auth_state(conn, user_id)
        state = None if row is None else _State(row["role"], row["token_version"])
        self._cache[user_id] = (now + self.ttl, state)
        self._cache.move_to_end(user_id)
        while len(self._cache) > self.size:
            self._cache.popitem(last=False)
        return state
