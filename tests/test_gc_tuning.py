"""GC policy (server/gc_tuning.py, docs/gc.md): `serve` uses the measured thresholds and
freezes after start-up unless GC_THRESHOLDS / GC_FREEZE_AT_START say otherwise; a bad
value is refused naming the variable; an app applies what its settings say once started."""

from __future__ import annotations

import gc
from pathlib import Path

import httpx
import pytest

from comfygraph.server import gc_tuning
from comfygraph.server.app import create_app
from comfygraph.server.serve import with_gc_defaults
from comfygraph.server.settings import Settings, SettingsError, load_settings
from tests.servers import serve_in_thread


def test_serve_defaults_unless_the_environment_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = with_gc_defaults(load_settings())
    assert plain.gc_thresholds == gc_tuning.SERVE_THRESHOLDS and plain.gc_freeze_at_start
    monkeypatch.setenv("GC_THRESHOLDS", "700, 10, 10")
    monkeypatch.setenv("GC_FREEZE_AT_START", "false")
    chosen = with_gc_defaults(load_settings())
    assert chosen.gc_thresholds == (700, 10, 10) and not chosen.gc_freeze_at_start


@pytest.mark.parametrize("bad", ["x", "1,2", "0,10,10", "1,2,3,4", "5,-1,3"])
def test_bad_thresholds_are_refused(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("GC_THRESHOLDS", bad)
    with pytest.raises(SettingsError, match="GC_THRESHOLDS"):
        load_settings()


def test_an_app_applies_its_policy_once_started(dsn: str, tmp_path: Path) -> None:
    saved = gc.get_threshold()
    settings = Settings(database_url=dsn, data_dir=tmp_path, gc_thresholds=(12345, 11, 12),
                        gc_freeze_at_start=True)  # fmt: skip
    try:
        with serve_in_thread(create_app(settings, dsn=dsn)) as url:
            assert httpx.get(f"{url}/readyz").status_code == 200
            assert gc.get_threshold() == (12345, 11, 12) and gc.get_freeze_count() > 0
    finally:
        gc.set_threshold(*saved)
        gc.unfreeze()
