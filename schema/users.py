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
    email: str
    full_name: str | None
    role: Role
    created_at: datetime
    uid: strawberry.Private[uuid.UUID]
