"""Users: bcrypt password hashes, unique case-insensitive emails."""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import asyncpg
import bcrypt

from comfygraph.db.errors import DuplicateEmail

# bcrypt cost 12 as seed 004 asks; hashing runs in a thread so it never blocks the loop.
BCRYPT_ROUNDS = 12
# bcrypt runs on its own small thread pool: never on the event loop, and a burst of
# logins cannot take every thread of the default executor.
_BCRYPT = ThreadPoolExecutor(max_workers=2, thread_name_prefix="bcrypt")


@functools.cache
def _dummy_hash() -> bytes:
    """Compared against when the email is unknown, so a login takes as long either way:
    the same cost as real hashes (made once, on first use, in the bcrypt pool)."""
    return bcrypt.hashpw(b"not-a-password", bcrypt.gensalt(BCRYPT_ROUNDS))


# Made in the background at import, so that the first unknown email costs no more.
_BCRYPT.submit(_dummy_hash)


def _check(password: bytes, stored: bytes | None) -> bool:
    return bcrypt.checkpw(password, stored or _dummy_hash()) and stored is not None


def hash_password(password: str, *, rounds: int = BCRYPT_ROUNDS) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


async def create_user(
    conn: asyncpg.Connection,
    *,
    email: str,
    password: str,
    full_name: str | None = None,
    role: str = "user",
    rounds: int = BCRYPT_ROUNDS,
) -> asyncpg.Record:
    """Insert a user; raises DuplicateEmail when the address is taken (in any case)."""
    password_hash = await asyncio.to_thread(hash_password, password, rounds=rounds)
    try:
        row = await conn.fetchrow(
            """INSERT INTO users (email, password_hash, full_name, role)
               VALUES ($1, $2, $3, $4) RETURNING *""",
            email.strip(), password_hash, full_name, role,
        )  # fmt: skip
    except asyncpg.UniqueViolationError as exc:
        raise DuplicateEmail(f"a user with email {email} already exists") from exc
    assert row is not None
    return row


async def get_user_by_email(conn: asyncpg.Connection, email: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM users WHERE lower(email) = lower($1) AND deleted_at IS NULL", email.strip()
    )


async def users_by_ids(
    conn: asyncpg.Connection, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, asyncpg.Record]:
    rows = await conn.fetch(
        "SELECT * FROM users WHERE id = ANY($1::uuid[]) AND deleted_at IS NULL", list(ids)
    )
    return {r["id"]: r for r in rows}


async def authenticate(pool: asyncpg.Pool, email: str, password: str) -> asyncpg.Record | None:
    """The user if the password matches, else None (same work for unknown emails). No
    connection is held while bcrypt runs."""
    async with pool.acquire() as conn:
        row = await get_user_by_email(conn, email)
    stored = row["password_hash"].encode() if row else None
    loop = asyncio.get_running_loop()
    ok = await loop.run_in_executor(_BCRYPT, _check, password.encode(), stored)
    if not (ok and row):
        return None
    async with pool.acquire() as conn:
        await conn.execute("UPDATE users SET last_login_at = now() WHERE id = $1", row["id"])
    return row


async def auth_state(conn: asyncpg.Connection, user_id: uuid.UUID) -> asyncpg.Record | None:
    """What a token is checked against: the user's role and token version, if the user
    exists and is neither deleted nor disabled."""
    return await conn.fetchrow(
        """SELECT id, role, token_version FROM users
           WHERE id = $1 AND deleted_at IS NULL AND disabled_at IS NULL""",
        user_id,
    )


async def revoke_tokens(conn: asyncpg.Connection, email: str) -> asyncpg.Record | None:
    """Every token issued so far to the user with this email stops working."""
    return await conn.fetchrow(
        """UPDATE users SET token_version = token_version + 1
           WHERE lower(email) = lower($1) RETURNING id, email, token_version""",
        email.strip(),
    )
