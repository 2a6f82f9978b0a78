"""What the lifespan owns: resources shared by every request of one app instance."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import asyncpg

from comfy.events import JobEvents, Publish, discard
from comfy.templates import TemplateSet
from server.settings import Settings
from server.storage import LocalStorage

if TYPE_CHECKING:
    from comfy.runtime import ComfyRuntime
    from server.events import EventBus


@dataclass
class AppState:
    settings: Settings
    dsn: str
    pool: asyncpg.Pool
    ready: dict[str, str] = field(default_factory=dict)
    templates: TemplateSet = field(default_factory=lambda: TemplateSet({}, ()))
    storage: LocalStorage | None = None
    comfy: ComfyRuntime | None = None
    bus: EventBus | None = None
    publish: Publish = discard

    @property
    def events(self) -> JobEvents:
        return JobEvents(self.publish)
