"""The User type."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

import strawberry

from comfygraph.schema.enums import Role
from comfygraph.schema.node import Node

if TYPE_CHECKING:
    from comfygraph.resolvers.context import Context


@strawberry.type
class User(Node):
    id: strawberry.ID
    full_name: str | None
    role: Role
    created_at: datetime
    uid: strawberry.Private[uuid.UUID]
    address: strawberry.Private[str]
    #: the viewer just proved to be this user (login's payload, before any token is used)
    revealed: strawberry.Private[bool] = False

    @strawberry.field(
        description="The secret that signs your submits' one-off webhookUrl deliveries "
        "(Standard Webhooks); null for anyone but yourself, and until a first webhookUrl."
    )
    async def webhook_secret(self, info: strawberry.Info[Context, None]) -> str | None:
        if info.context.viewer.user_id != self.uid:
            return None
        return await info.context.loaders.webhook_secret(self.uid)

    @strawberry.field(
        description="The user's email: only the user and admins see it; everyone else gets "
        "an empty string (show displayName instead)."
    )
    def email(self, info: strawberry.Info) -> str:
        viewer = getattr(info.context, "viewer", None)
        if self.revealed:
            return self.address
        if viewer is not None and (viewer.is_admin or viewer.user_id == self.uid):
            return self.address
        return ""

    @strawberry.field(description="What to show other people: the full name, or a handle.")
    def display_name(self) -> str:
        return self.full_name or f"user-{self.uid.hex[:8]}"

    @strawberry.field
    async def storage_used_bytes(self, info: strawberry.Info[Context, None]) -> float | None:
        if not _own_or_admin(info, self.uid):
            return None
        used, _ = await info.context.storage_usage(self.uid)
        return float(used)

    @strawberry.field
    async def storage_quota_bytes(self, info: strawberry.Info[Context, None]) -> float | None:
        if not _own_or_admin(info, self.uid):
            return None
        _, quota = await info.context.storage_usage(self.uid)
        return None if quota is None else float(quota)


def _own_or_admin(info: strawberry.Info, uid: uuid.UUID) -> bool:
    viewer = getattr(info.context, "viewer", None)
    return viewer is not None and (viewer.is_admin or viewer.user_id == uid)
