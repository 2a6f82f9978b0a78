"""`python bench/gc_probe.py PORT`: the app of `uvicorn server.factory:app_from_env` (its
settings from the environment), with the cyclic GC timed: every collection's duration
by generation (gc.callbacks). On SIGUSR1 the totals so far go to GC_PROBE_OUT as JSON,
so a benchmark takes the difference over a phase: GC ms and collections per request,
and the longest pause, measured inside the server (a busy machine barely moves them).
"""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import uvicorn

totals: dict[str, Any] = {"seconds": 0.0, "max_pause_ms": 0.0, "collections": [0, 0, 0]}
_started: list[float] = [0.0]


def _timed(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
        return
    took = time.perf_counter() - _started[0]
    totals["seconds"] += took
    totals["max_pause_ms"] = max(totals["max_pause_ms"], took * 1000)
    totals["collections"][info["generation"]] += 1


def _dump(signum: int, frame: object) -> None:
    Path(os.environ["GC_PROBE_OUT"]).write_text(json.dumps(totals))
    totals["max_pause_ms"] = 0.0  # the longest pause of the next phase


if __name__ == "__main__":
    gc.callbacks.append(_timed)
    signal.signal(signal.SIGUSR1, _dump)
    uvicorn.run("comfygraph.server.factory:app_from_env", factory=True, host="127.0.0.1",
                port=int(sys.argv[1]), log_level="warning", access_log=False,
                ws_per_message_deflate=False)  # fmt: skip
