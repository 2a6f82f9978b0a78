"""The application's resources as requests use them: built once, completely, by the
app's lifespan, so that no caller ever checks whether one is there."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from comfygraph.bus import EventBus
from comfygraph.comfy.templates import TemplateSet
from comfygraph.storage import Storage
from comfygraph.studio.channels import JobEvents, Publish
from comfygraph.studio.files import FileSigner
from comfygraph.studio.runtime import ComfyRuntime
from comfygraph.studio.sessions import SessionPipeline
from comfygraph.studio.webhooks import WebhookSender


@dataclass(frozen=True)
class Services:
    pool: asyncpg.Pool
    templates: TemplateSet
    storage: Storage
    comfy: ComfyRuntime
    bus: EventBus
    publish: Publish
    files: FileSigner  # signs /files URLs for clients (studio/files.py)
    webhooks: WebhookSender | None = None  # the app's outbox sender (None: no webhooks)

    @property
    def events(self) -> JobEvents:
        return JobEvents(self.publish)

    def sessions(self) -> SessionPipeline:
        """The session pipeline on this replica's workers (cheap: holds references only)."""
        return SessionPipeline(
            pool=self.pool,
            templates=self.templates,
            store=self.storage,
            publish=self.publish,
            workers=self.comfy.workers,
            wake=self.comfy.dispatcher.wake,
        )
