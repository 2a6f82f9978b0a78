"""Who may see what, in one place: owners see their own, everyone sees public jobs,
admins see everything. Soft-deleted rows are seen by nobody through a read path.

Both the SQL side (conditions for feeds) and the Python side (checks on single rows
already fetched) live here so that the two can never disagree.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


@dataclass(frozen=True)
class Viewer:
    user_id: uuid.UUID | None = None
    is_admin: bool = False

    @property
    def anonymous(self) -> bool:
        return self.user_id is None


ANONYMOUS = Viewer()


class Scope(StrEnum):
    MINE = "mine"
    PUBLIC = "public"
    ALL = "all"


def can_see_job(viewer: Viewer, row: Mapping[str, Any]) -> bool:
    if row["deleted_at"] is not None:
        return False
    if viewer.is_admin or row["public"]:
        return True
    return viewer.user_id is not None and row["user_id"] == viewer.user_id


def can_change_job(viewer: Viewer, row: Mapping[str, Any]) -> bool:
    if row["deleted_at"] is not None or viewer.user_id is None:
        return False
    return viewer.is_admin or row["user_id"] == viewer.user_id


def can_see_session(viewer: Viewer, row: Mapping[str, Any]) -> bool:
    """Sessions are private to their owner (and admins)."""
    if row["deleted_at"] is not None or viewer.user_id is None:
        return False
    return viewer.is_admin or row["user_id"] == viewer.user_id


can_change_session = can_see_session


def can_see_asset(
    viewer: Viewer, asset: Mapping[str, Any], session: Mapping[str, Any] | None
) -> bool:
    """Assets are seen through their session: only its owner (and admins)."""
    if asset["deleted_at"] is not None or session is None:
        return False
    return asset["session_id"] == session["id"] and can_see_session(viewer, session)


def can_see_user(viewer: Viewer, user_id: uuid.UUID) -> bool:
    """A user fetched by id: only the user themself and admins. (The owner shown on a
    job or session is seen by whoever may see that job or session.)"""
    return viewer.is_admin or (viewer.user_id is not None and viewer.user_id == user_id)


def scope_branches(viewer: Viewer, scope: Scope) -> list[str]:
    """SQL conditions (ORed by the caller as separate UNION branches, each of which
    one feed index serves) selecting what `viewer` may see in `scope`.

    `$viewer` stands for the viewer's id parameter. An empty list means "nothing".
    """
    if scope is Scope.MINE:
        return [] if viewer.anonymous else ["user_id = $viewer"]
    if scope is Scope.PUBLIC or viewer.anonymous:
        return ["public"]
    if viewer.is_admin:
        return ["true"]
    # Own jobs, plus other people's public ones: disjoint, so no row appears twice.
    return ["user_id = $viewer", "public AND user_id IS DISTINCT FROM $viewer"]
