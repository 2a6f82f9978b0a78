"""Arguments -> data-layer queries: JobFilter -> JobQuery, global ids -> row ids."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import strawberry

from comfygraph.db.feed import JobQuery
from comfygraph.db.kinds import OutputType as Kind
from comfygraph.db.visibility import Scope, Viewer
from comfygraph.resolvers.mapping import KIND_OF_TYPE_NAME
from comfygraph.schema.errors import invalid_argument
from comfygraph.schema.jobs import JobFilter
from comfygraph.schema.node import from_global_id

JOB_TYPE_NAMES = frozenset(KIND_OF_TYPE_NAME)
MAX_FILTER_VALUES = 100
T = TypeVar("T")


def given(value: T | None) -> T | None:
    """None for an argument that was left out (UNSET) or passed as null."""
    return None if value is strawberry.UNSET else value


def job_id(value: str) -> tuple[Kind, uuid.UUID]:
    type_name, uid = from_global_id(value, expect=JOB_TYPE_NAMES)
    return KIND_OF_TYPE_NAME[type_name], uid


def session_id(value: str) -> uuid.UUID:
    return from_global_id(value, expect=frozenset({"Session"}))[1]


def batch_id(value: str, argument: str = "id") -> uuid.UUID:
    """A batch id (submitJob's batchId): a UUID."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise invalid_argument(argument, f"not a batch id: {value!r}") from None


def _values(argument: str, values: Sequence[T] | None) -> tuple[T, ...] | None:
    values = given(values)
    if values is None:
        return None
    if len(values) > MAX_FILTER_VALUES:
        raise invalid_argument(argument, f"at most {MAX_FILTER_VALUES} values")
    return tuple(values)


def _utc(value: datetime | None) -> datetime | None:
    """Times without a zone are taken as UTC."""
    value = given(value)
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def job_query(
    viewer: Viewer, f: JobFilter | None, *, kinds: frozenset[Kind] = frozenset(Kind)
) -> JobQuery:
    """The data-layer query for a feed; `kinds` narrows it to the tables a field serves."""
    f = given(f) or JobFilter()
    scope = given(f.scope)
    output_types = _values("filter.outputTypes", f.output_types)
    if output_types is not None:
        kinds = kinds & {Kind(t.value) for t in output_types}
    statuses = _values("filter.statuses", f.statuses)
    sid = given(f.session_id)
    default_scope = Scope.PUBLIC if viewer.anonymous else Scope.MINE
    return JobQuery(
        scope=Scope(scope.value) if scope else default_scope,
        output_types=kinds,
        workflow_names=_values("filter.workflowNames", f.workflow_names),
        statuses=None if statuses is None else tuple(s.value for s in statuses),
        session_id=None if sid is None else session_id(sid),
        batch_id=None if not given(f.batch_id) else batch_id(str(f.batch_id), "filter.batchId"),
        created_after=_utc(f.created_after),
        created_before=_utc(f.created_before),
    )


def statuses_of(values: Sequence[Any] | None) -> tuple[str, ...] | None:
    values = _values("statuses", values)
    return None if values is None else tuple(v.value for v in values)
