"""Is this error the database being out of reach (restarting, unreachable, its
connection cut) rather than something the statement did? One answer for every layer:
the server answers such a request SERVICE_UNAVAILABLE, the error policy logs it as a
warning line, and the job runner retries the write until the database is back."""

from __future__ import annotations

import asyncpg

_DOWN = (
    OSError,  # refused, reset (and TimeoutError: a pool that cannot connect)
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,  # "connection is closed"
    asyncpg.CannotConnectNowError,  # starting up, recovering
    asyncpg.AdminShutdownError,  # terminated, server shutting down
    asyncpg.CrashShutdownError,
    # "cannot switch to state ...; another operation is in progress": a pooled connection
    # whose server died under it, met before the pool noticed
    asyncpg.InternalClientError,
)


def database_down(error: BaseException | None) -> bool:
    """True when `error`, or what caused it (a few links down), says the database is
    out of reach."""
    seen = 0
    while error is not None and seen < 8:
        if isinstance(error, _DOWN):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False
