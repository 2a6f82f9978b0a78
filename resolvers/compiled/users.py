"""User selections (a job's or session's owner, `me`, node of a User). What a viewer
sees of a user is db.visibility.can_see_user's rule (the user and admins), as
schema/users.py applies it: email, storage figures; the webhook secret is the
user's own only."""

from __future__ import annotations

from typing import Any

from graphql import FieldNode

from comfygraph.db.users import users_by_ids
from comfygraph.db.visibility import can_see_user
from comfygraph.db.webhooks import get_user_secret
from comfygraph.resolvers.compiled.collect import Unsupported
from comfygraph.resolvers.compiled.doc import Doc
from comfygraph.resolvers.compiled.fields import USER_FIELDS, Env, Getter, Row
from comfygraph.resolvers.compiled.shape import Load, Shape, builder, typename


def _display_name(row: Row, env: Env) -> str:
    return row["full_name"] or f"user-{row['id'].hex[:8]}"


def _storage(index: int) -> Getter:
    def get(row: Row, env: Env) -> float | None:
        usage = env.storage.get(row["id"]) if can_see_user(env.viewer, row["id"]) else None
        value = None if usage is None else usage[index]
        return None if value is None else float(value)

    return get


async def _load_storage(rows: list[Row], env: Env) -> None:
    # ctx.storage_usage is what User.storage*Bytes call (on the pool, as they do)
    for row in rows:
        uid = row["id"]
        if uid not in env.storage and can_see_user(env.viewer, uid):
            env.storage[uid] = await env.ctx.storage_usage(uid)


def _secret(row: Row, env: Env) -> str | None:
    return env.secrets.get(row["id"]) if env.viewer.user_id == row["id"] else None


async def _load_secret(rows: list[Row], env: Env) -> None:
    uid = env.viewer.user_id
    if uid is not None and uid not in env.secrets and any(r["id"] == uid for r in rows):
        env.secrets[uid] = await get_user_secret(env.conn, uid)


def user_shape(doc: Doc, nodes: list[FieldNode]) -> Shape:
    getters: list[tuple[str, Getter]] = []
    loads: set[Load] = set()
    for key, fnodes in doc.fields_of("User", nodes).items():
        name = fnodes[0].name.value
        if name == "__typename":
            getters.append((key, typename("User")))
        elif name in USER_FIELDS:
            getters.append((key, USER_FIELDS[name]))
        elif name == "displayName":
            getters.append((key, _display_name))
        elif name in {"storageUsedBytes", "storageQuotaBytes"}:
            getters.append((key, _storage(0 if name == "storageUsedBytes" else 1)))
            loads.add(_load_storage)
        elif name == "webhookSecret":
            getters.append((key, _secret))
            loads.add(_load_secret)
        else:
            raise Unsupported(f"User.{name}")
    order = [_load_storage, _load_secret]
    return Shape(builder(getters), loads=[f for f in order if f in loads])


async def load_users(ids: set[Any], env: Env) -> None:
    """Users by id into env.users (deleted ones stay absent: null, as the loader)."""
    missing = {i for i in ids if i is not None and i not in env.users}
    if missing:
        env.users.update(await users_by_ids(env.conn, missing))


def owner(doc: Doc, nodes: list[FieldNode]) -> tuple[Getter, Load]:
    """A row's `owner` (its user_id's user) and the load that fetches the owners."""
    shape = user_shape(doc, nodes)

    async def load(rows: list[Row], env: Env) -> None:
        ids = {r["user_id"] for r in rows}
        await load_users(ids, env)
        await shape.load([env.users[i] for i in ids if i in env.users], env)

    def get(row: Row, env: Env) -> dict[str, Any] | None:
        user = env.users.get(row["user_id"])
        return None if user is None else shape.build(user, env)

    return get, load
