"""Entry point for uvicorn worker processes (`serve --workers N`)."""

from __future__ import annotations

from starlette.applications import Starlette

from comfygraph.server.app import create_app
from comfygraph.server.settings import load_settings


def app_from_env() -> Starlette:
    return create_app(load_settings())
