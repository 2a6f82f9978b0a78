"""Entry point for uvicorn worker processes (`serve --workers N`)."""

from __future__ import annotations

import os

from starlette.applications import Starlette

from comfygraph.server.app import create_app
from comfygraph.server.settings import Settings, load_settings

#: the parent's full settings as JSON, handed to every worker process
SETTINGS_ENV = "COMFYGRAPH_SETTINGS_JSON"


def app_from_env() -> Starlette:
    raw = os.environ.get(SETTINGS_ENV)
    # model_validate_json does not read the environment: exactly the parent's settings.
    settings = Settings.model_validate_json(raw) if raw else load_settings()
    return create_app(settings, dsn=settings.database_url)
