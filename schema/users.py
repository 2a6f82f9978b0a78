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
    email: str
    full_name: str | None
    role: Role
    created_at: datetime
    uid: strawberry.Private[uuid.UUID]

    @strawberry.field(
        description="The secret that signs your submits' one-off webhookUrl deliveries "
        "(Standard Webhooks); null for anyone but yourself, and until a first webhookUrl."
    )
    async def webhook_secret(self, info: strawberry.Info[Context, None]) -> str | None:
        if info.context.viewer.user_id != self.uid:
            return None
        return await info.context.loaders.webhook_secret(self.uid)
