"""Query.me and Mutation.login."""

from __future__ import annotations

from typing import TYPE_CHECKING

import strawberry

from comfygraph.db.users import authenticate
from comfygraph.resolvers.mapping import user_from_row
from comfygraph.schema.errors import INVALID_CREDENTIALS, rate_limited, user_error
from comfygraph.schema.payloads import AuthPayload
from comfygraph.schema.users import User

if TYPE_CHECKING:
    from comfygraph.resolvers.context import Context

# bcrypt looks at 72 bytes at most (and refuses more); no stored password is longer.
MAX_PASSWORD_BYTES = 72
MAX_EMAIL = 320


async def me(info: strawberry.Info[Context, None]) -> User | None:
    user_id = info.context.viewer.user_id
    return None if user_id is None else await info.context.loaders.users.load(user_id)


async def login(info: strawberry.Info[Context, None], email: str, password: str) -> AuthPayload:
    """A bearer token for the user whose password this is; INVALID_CREDENTIALS otherwise
    (the same answer, in the same time, whether or not the email is known)."""
    ctx = info.context
    if ctx.rates is not None:
        limited = await ctx.rates.login(ctx.pool, ctx.client_address, email)
        if limited is not None:
            return AuthPayload(user_errors=[rate_limited(*limited)])
    row = None
    if len(email) <= MAX_EMAIL and len(password.encode()) <= MAX_PASSWORD_BYTES:
        # The pool, not the request's held connection: nothing is held during bcrypt.
        row = await authenticate(ctx.pool, email, password)
    if row is None:
        return AuthPayload(
            user_errors=[user_error(INVALID_CREDENTIALS, "wrong email or password", ["password"])]
        )
    token = info.context.issue_token(
        row["id"], role=row["role"], version=row.get("token_version", 0)
    )
    return AuthPayload(token=token, user=user_from_row(row, revealed=True))
