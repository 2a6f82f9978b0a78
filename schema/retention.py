"""Payloads of the retention and quota mutations."""

from __future__ import annotations

import strawberry

from comfygraph.schema.errors import UserError
from comfygraph.schema.users import User


@strawberry.type
class StorageQuotaPayload:
    user: User | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)
