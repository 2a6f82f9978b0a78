"""CPython's cyclic GC for a server process: thresholds and a freeze after start-up.

A feed request allocates a few thousand container objects (graphql-core's execution,
strawberry's wrappers, the rows); with the interpreter's thresholds (700, 10, 10) a
young collection runs every few requests and a full one, walking every long-lived
object (the schema, the compiled plans, the modules), every ~100 young ones. Freezing
what start-up built moves it out of every later collection; raising threshold0 makes
young collections rarer. Chosen by measurement (bench/feed_http.py --gc, figures in
docs/gc.md: the interpreted path spent ~10 ms per request in GC, 0.8 ms after):
`serve` applies GC_THRESHOLDS / GC_FREEZE_AT_START, defaulting to SERVE_THRESHOLDS and
SERVE_FREEZE; the library (tests, embedding) leaves the interpreter alone.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)

#: what `serve` uses unless GC_THRESHOLDS / GC_FREEZE_AT_START say otherwise
SERVE_THRESHOLDS = (10_000, 20, 100)
SERVE_FREEZE = True


def apply(thresholds: tuple[int, int, int] | None, freeze: bool) -> None:
    """Called once the app has started (its long-lived objects all exist)."""
    if thresholds is not None:
        gc.set_threshold(*thresholds)
    if freeze:
        gc.collect()  # garbage of start-up is freed now, not frozen forever
        gc.freeze()
    if thresholds is not None or freeze:
        log.info("gc thresholds %s, %d objects frozen", gc.get_threshold(), gc.get_freeze_count())
