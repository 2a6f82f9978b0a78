"""The User type."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry

from comfygraph.schema.enums import Role
from comfygraph.schema.node import Node


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
