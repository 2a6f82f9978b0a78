"""Domain errors of the data layer; callers never need asyncpg's exception types."""

from __future__ import annotations


class DataError(Exception):
    """Base of every error db/ raises on purpose."""


class NotFound(DataError):
    pass


class IllegalTransition(DataError):
    def __init__(self, job_id: object, current: str | None, target: str) -> None:
        self.job_id, self.current, self.target = job_id, current, target
        super().__init__(f"job {job_id}: {current} -> {target} is not allowed")


class DuplicateEmail(DataError):
    pass


class IdempotencyConflict(DataError):
    """The idempotency key was used before with a different request."""
