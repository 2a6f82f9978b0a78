"""Rows for data-layer tests, inserted through the repositories."""

from __future__ import annotations

import itertools
import uuid

import asyncpg

from comfygraph.db.users import create_user

_seq = itertools.count()


async def make_user(conn: asyncpg.Connection, *, role: str = "user") -> asyncpg.Record:
    # bcrypt cost 4: hashing strength is not what these tests are about.
    return await create_user(
        conn, email=f"user{next(_seq)}-{uuid.uuid4().hex[:6]}@example.com",
        password="correct horse", role=role, rounds=4,
    )  # fmt: skip
