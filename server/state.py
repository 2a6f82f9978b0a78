"""What the lifespan owns: resources shared by every request of one app instance."""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg

from server.settings import Settings


@dataclass
class AppState:
    settings: Settings
    dsn: str
    pool: asyncpg.Pool
    ready: dict[str, str] = field(default_factory=dict)
