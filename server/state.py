"""What the lifespan owns: resources shared by every request of one app instance."""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg

from comfygraph.bus import EventBus
from comfygraph.server.settings import Settings
from comfygraph.storage import Storage
from comfygraph.studio.runtime import ComfyRuntime
from comfygraph.studio.services import Services
from comfygraph.studio.supervisor import Supervisor


@dataclass
class AppState:
    settings: Settings
    dsn: str
    services: Services
    supervisor: Supervisor
    ready: dict[str, str] = field(default_factory=dict)

    @property
    def pool(self) -> asyncpg.Pool:
        return self.services.pool

    @property
    def storage(self) -> Storage:
        return self.services.storage

    @property
    def comfy(self) -> ComfyRuntime:
        return self.services.comfy

    @property
    def bus(self) -> EventBus:
        return self.services.bus
