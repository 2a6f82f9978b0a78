"""Query.node and Query.nodes: refetch anything by its global id.

Each kind of object is read through the request's DataLoaders, which answer None for
what the viewer may not see, so `nodes` of a hundred ids costs one statement per kind.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

import strawberry

from comfygraph.db.visibility import can_see_user
from comfygraph.resolvers.mapping import KIND_OF_TYPE_NAME
from comfygraph.schema.errors import invalid_argument
from comfygraph.schema.node import Node, from_global_id

if TYPE_CHECKING:
    from comfygraph.resolvers.context import Context

MAX_NODES = 100


async def node(info: strawberry.Info[Context, None], id: strawberry.ID) -> Node | None:
    type_name, uid = from_global_id(id)
    return await _load(info.context, type_name, uid)


async def nodes(
    info: strawberry.Info[Context, None], ids: list[strawberry.ID]
) -> list[Node | None]:
    if len(ids) > MAX_NODES:
        raise invalid_argument("ids", f"at most {MAX_NODES} ids at once")
    decoded = [from_global_id(i) for i in ids]
    return list(await asyncio.gather(*(_load(info.context, t, uid) for t, uid in decoded)))


async def _load(ctx: Context, type_name: str, uid: uuid.UUID) -> Node | None:
    loaders = ctx.loaders
    if type_name in KIND_OF_TYPE_NAME:
        return await loaders.jobs.load((KIND_OF_TYPE_NAME[type_name].value, uid))
    if type_name == "Session":
        return await loaders.sessions.load(uid)
    if type_name == "Asset":
        return await loaders.assets.load(uid)
    if not can_see_user(ctx.viewer, uid):
        return None
    return await loaders.users.load(uid)
