"""The User type."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry

from schema.enums import Role
from schema.node import Node


@strawberry.type
class User(Node):
    id: strawberry.ID
    email: str
    full_name: str | None
    role: Role
    created_at: datetime
    uid: strawberry.Private[uuid.UUID]
