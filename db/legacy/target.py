"""Imported rows in the job tables: classify, write, check, and take them out again.

An imported row is *owned* by the import while nothing but the import has touched its
lifecycle: its status is still the one the import gave it (parameters.legacy.
imported_status), nobody soft-deleted it, and an adopted job has not yet been taken
over by a replica's recovery. A re-run updates only owned rows whose fingerprint
changed; a row this server has moved on (completed an adopted job, deleted a job) is
kept as it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from comfygraph.db.kinds import OutputType
from comfygraph.db.legacy.errors import LegacyImportError
from comfygraph.db.legacy.mapping import write_columns
from comfygraph.db.legacy.tables import CLAIMED_BY, TABLES

# Held for the whole run: two imports (or an import and a rollback) never interleave.
IMPORT_LOCK_KEY = 7_305_112_020

OWNED = f"""(t.deleted_at IS NULL
    AND t.status = t.parameters #>> '{{legacy,imported_status}}'
    AND (t.status <> 'processing' OR t.claimed_by = '{CLAIMED_BY}'))"""
_FINGERPRINT = "t.parameters #>> '{legacy,fingerprint}'"
_SOURCES = tuple(TABLES)


async def acquire_lock(conn: asyncpg.Connection) -> None:
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", IMPORT_LOCK_KEY):
        raise LegacyImportError("another import-legacy run is using this database; try later")


async def release_lock(conn: asyncpg.Connection) -> None:
    await conn.execute("SELECT pg_advisory_unlock($1)", IMPORT_LOCK_KEY)


async def create_scratch(conn: asyncpg.Connection, kinds: Iterable[OutputType], *,
                         stages: bool) -> None:  # fmt: skip
    """Session temp tables: the ids seen this run (duplicates are found there) and, for
    a real run, one stage per job table for the updates. Temp tables hold no one
    else's data and write no WAL; a dry run creates them before its read-only
    transaction starts (which may then write only to them)."""
    await conn.execute(
        """DROP TABLE IF EXISTS pg_temp.legacy_seen;
           CREATE TEMP TABLE legacy_seen (
               source text NOT NULL, legacy_id text NOT NULL, PRIMARY KEY (source, legacy_id))"""
    )
    if stages:
        for kind in kinds:
            await conn.execute(
                f"""DROP TABLE IF EXISTS pg_temp.legacy_stage_{kind.value};
                    CREATE TEMP TABLE legacy_stage_{kind.value} AS
                    SELECT {", ".join(write_columns(kind))} FROM {kind.table} WITH NO DATA"""
            )


async def drop_scratch(conn: asyncpg.Connection) -> None:
    await conn.execute(
        "DROP TABLE IF EXISTS pg_temp.legacy_seen, pg_temp.legacy_stage_video,"
        " pg_temp.legacy_stage_image, pg_temp.legacy_stage_text"
    )


@dataclass(frozen=True, slots=True)
class Existing:
    kind: OutputType
    fingerprint: str | None
    owned: bool


async def classify(
    conn: asyncpg.Connection,
    source: str,
    ids: Sequence[str],
    kinds: Sequence[OutputType],
    *,
    dedupe: bool,
    lookup: bool,
) -> tuple[set[str], dict[str, Existing]]:
    """Return the batch's ids seen for the first time this run, and what the job tables
    already hold for them (from an earlier run).

    `dedupe` (the source key is not unique): ids are recorded in legacy_seen, and one
    seen before this run is not fresh (a duplicate key at the source). `lookup` (rows
    of this source were imported before): each id is probed in the job tables through
    the (legacy_source, legacy_id) index, one LATERAL probe per id; a first import of
    a table skips this.
    """
    fresh: set[str]
    if dedupe:
        fresh_sql = """INSERT INTO pg_temp.legacy_seen (source, legacy_id)
                       SELECT $1, i FROM unnest($2::text[]) AS i
                       ON CONFLICT DO NOTHING RETURNING legacy_id"""
    else:
        fresh_sql = "SELECT i AS legacy_id FROM unnest($2::text[]) AS i"
    if not lookup:
        if not dedupe:
            return set(ids), {}
        return {r["legacy_id"] for r in await conn.fetch(fresh_sql, source, list(ids))}, {}
    probes = " UNION ALL ".join(
        f"""SELECT '{k.value}'::text AS kind, {_FINGERPRINT} AS fingerprint, {OWNED} AS owned
            FROM {k.table} t WHERE t.legacy_source = $1 AND t.legacy_id = f.legacy_id"""
        for k in kinds
    )
    rows = await conn.fetch(
        f"""WITH fresh AS ({fresh_sql})
            SELECT f.legacy_id, e.kind, e.fingerprint, e.owned
            FROM fresh f LEFT JOIN LATERAL ({probes}) e ON true""",
        source, list(ids),
    )  # fmt: skip
    fresh = set()
    existing: dict[str, Existing] = {}
    for row in rows:
        legacy_id = row["legacy_id"]
        fresh.add(legacy_id)
        if row["kind"] is None:
            continue
        if legacy_id in existing:
            raise LegacyImportError(
                f"{source} {legacy_id!r} was imported into two job tables; run --rollback"
            )
        existing[legacy_id] = Existing(OutputType(row["kind"]), row["fingerprint"], row["owned"])
    return fresh, existing


async def insert_rows(
    conn: asyncpg.Connection, kind: OutputType, records: list[tuple[Any, ...]]
) -> None:
    """New rows, by binary COPY (the classification proved none of them exists)."""
    if records:
        await conn.copy_records_to_table(kind.table, records=records, columns=write_columns(kind))


async def update_rows(
    conn: asyncpg.Connection, kind: OutputType, records: list[tuple[Any, ...]]
) -> set[str]:
    """Rewrite owned rows from their changed source rows; return the ids updated.

    Identity (id, legacy_source/legacy_id) and what the import never sets (user_id,
    public, session_id, priority, ...) stay as they are. The ownership guard is checked
    again here, so a row a replica touched since the classification is left alone.
    """
    if not records:
        return set()
    stage = f"pg_temp.legacy_stage_{kind.value}"
    columns = write_columns(kind)
    await conn.execute(f"TRUNCATE {stage}")
    await conn.copy_records_to_table(f"legacy_stage_{kind.value}", records=records,
                                     columns=columns, schema_name="pg_temp")  # fmt: skip
    settable = [c for c in columns if c not in ("id", "legacy_source", "legacy_id")]
    rows = await conn.fetch(
        f"""UPDATE {kind.table} t
            SET ({", ".join(settable)}) = ({", ".join("s." + c for c in settable)})
            FROM {stage} s
            WHERE t.legacy_source = s.legacy_source AND t.legacy_id = s.legacy_id AND {OWNED}
            RETURNING t.legacy_id"""
    )
    return {r["legacy_id"] for r in rows}


async def delete_moved(
    conn: asyncpg.Connection, kind: OutputType, source: str, ids: Sequence[str]
) -> set[str]:
    """Take owned rows out of `kind`'s table because their workflow now puts them in
    another one (a workflow map, or a better guess); return the ids removed."""
    rows = await conn.fetch(
        f"""DELETE FROM {kind.table} t
            WHERE t.legacy_source = $1 AND t.legacy_id = ANY($2::text[]) AND {OWNED}
            RETURNING t.legacy_id""",
        source, list(ids),
    )  # fmt: skip
    return {r["legacy_id"] for r in rows}


async def count_imported(conn: asyncpg.Connection, source: str, kinds: Sequence[OutputType]) -> int:
    total = 0
    for kind in kinds:
        total += await conn.fetchval(
            f"SELECT count(*) FROM {kind.table} WHERE legacy_source = $1 AND legacy_id IS NOT NULL",
            source,
        )
    return total


async def count_in_two_tables(
    conn: asyncpg.Connection, source: str, kinds: Sequence[OutputType]
) -> int:
    """Ids of `source` present in more than one job table (must be none)."""
    if len(kinds) < 2:
        return 0
    union = " UNION ALL ".join(
        f"SELECT legacy_id FROM {k.table} WHERE legacy_source = $1 AND legacy_id IS NOT NULL"
        for k in kinds
    )
    return int(
        await conn.fetchval(
            f"SELECT count(*) FROM (SELECT legacy_id FROM ({union}) u"
            " GROUP BY legacy_id HAVING count(*) > 1) d",
            source,
        )
    )


async def count_pending(conn: asyncpg.Connection) -> int:
    """Imported rows that are PENDING, which the dispatcher would run (must be none)."""
    total = 0
    for kind in OutputType:
        total += await conn.fetchval(
            f"""SELECT count(*) FROM {kind.table}
                WHERE status = 'pending' AND legacy_source = ANY($1::text[])""",
            list(_SOURCES),
        )
    return total


@dataclass
class Removed:
    source: str
    rows: int = 0
    touched: int = 0  # of rows: changed by this server since the import


async def remove_imported(
    conn: asyncpg.Connection, sources: Sequence[str], *, dry_run: bool
) -> list[Removed]:
    """Delete every row the import created from `sources` (found by legacy_source and
    legacy_id; nothing else carries them), or, for a dry run, count them."""
    removed = {s: Removed(s) for s in sources}
    for kind in OutputType:
        verb = (
            f"SELECT t.legacy_source, {OWNED} AS owned FROM {kind.table} t"
            if dry_run
            else f"DELETE FROM {kind.table} t"
        )
        tail = "" if dry_run else f" RETURNING t.legacy_source, {OWNED} AS owned"
        rows = await conn.fetch(
            f"""WITH gone AS ({verb}
                    WHERE t.legacy_source = ANY($1::text[]) AND t.legacy_id IS NOT NULL{tail})
                SELECT legacy_source, count(*) AS n, count(*) FILTER (WHERE NOT owned) AS touched
                FROM gone GROUP BY legacy_source""",
            list(sources),
        )
        for row in rows:
            removed[row["legacy_source"]].rows += row["n"]
            removed[row["legacy_source"]].touched += row["touched"]
    return list(removed.values())
