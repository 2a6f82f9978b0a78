"""Reading the legacy database: one READ ONLY, REPEATABLE READ snapshot, streamed.

Nothing here writes: the importer opens the source with default_transaction_read_only
and reads inside a read-only transaction, so PostgreSQL itself refuses any write.
Rows travel as `row_to_json(t)` text: every column the table has, of whatever type,
discovered at run time, with PostgreSQL's own text forms (timestamps with their
offset, numerics exact, bytea as hex).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import asyncpg

from comfygraph.db.legacy.errors import LegacyImportError
from comfygraph.db.legacy.tables import LegacyTable


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class SourceTable:
    spec: LegacyTable
    schema: str
    columns: tuple[str, ...]  # in table order
    key_columns: tuple[str, ...]  # () when the table has no key: rows are named by content
    unique_key: bool = False  # a unique index guarantees no two rows share a key

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def qualified(self) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(self.spec.name)}"

    @property
    def key_sql(self) -> str | None:
        """The legacy id of a row as text (composite keys as a JSON array)."""
        if not self.key_columns:
            return None
        if len(self.key_columns) == 1:
            return f"t.{quote_ident(self.key_columns[0])}::text"
        columns = ", ".join("t." + quote_ident(c) for c in self.key_columns)
        return f"json_build_array({columns})::text"

    @property
    def missing(self) -> tuple[str, ...]:
        """Seed 001 columns the table lacks (read as NULL)."""
        return tuple(c for c in self.spec.expected if c not in self.columns)

    @property
    def extra(self) -> tuple[str, ...]:
        """Columns seed 001 does not list (kept in parameters.legacy.row only)."""
        if not self.spec.expected:
            return ()
        return tuple(c for c in self.columns if c not in self.spec.expected)


async def discover(
    conn: asyncpg.Connection, schema: str, specs: Sequence[LegacyTable]
) -> list[SourceTable]:
    """Each table's columns and key, from information_schema, in the current snapshot.

    A missing table, or one without its key or status column, is an error that names
    it: nothing has been written when this raises.
    """
    names = [s.name for s in specs]
    rows = await conn.fetch(
        """SELECT table_name::text AS t, column_name::text AS c
           FROM information_schema.columns
           WHERE table_schema = $1 AND table_name = ANY($2::text[])
           ORDER BY table_name, ordinal_position""",
        schema, names,
    )  # fmt: skip
    columns: dict[str, list[str]] = {}
    for row in rows:
        columns.setdefault(row["t"], []).append(row["c"])
    absent = [n for n in names if n not in columns]
    if absent:
        raise LegacyImportError(
            f"the legacy source has no table {', '.join(f'{schema}.{n}' for n in absent)}"
            " (pass --tables to import the others)"
        )
    found = []
    for spec in specs:
        cols = tuple(columns[spec.name])
        lacking = [c for c in spec.required if c not in cols]
        if lacking:
            raise LegacyImportError(
                f"legacy table {schema}.{spec.name} has no column {', '.join(lacking)}"
            )
        key: tuple[str, ...] = (spec.key,) if spec.key else await _primary_key(conn, schema, spec)
        if not key and "id" in cols:
            key = ("id",)
        table = SourceTable(spec, schema, cols, key)
        unique = bool(key) and await _unique(conn, table.qualified, key)
        found.append(SourceTable(spec, schema, cols, key, unique))
    return found


async def _unique(conn: asyncpg.Connection, qualified: str, key: tuple[str, ...]) -> bool:
    """Whether a unique, total index covers exactly the key columns."""
    return bool(
        await conn.fetchval(
            """SELECT EXISTS (
                   SELECT 1 FROM pg_index i
                   WHERE i.indrelid = to_regclass($1) AND i.indisunique
                     AND i.indpred IS NULL AND i.indexprs IS NULL
                     AND ARRAY(SELECT a.attname::text FROM pg_attribute a
                               WHERE a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
                               ORDER BY a.attname) = $2::text[])""",
            qualified, sorted(key),
        )
    )  # fmt: skip


async def _primary_key(conn: asyncpg.Connection, schema: str, spec: LegacyTable) -> tuple[str, ...]:
    rows = await conn.fetch(
        """SELECT k.column_name::text AS c
           FROM information_schema.table_constraints tc
           JOIN information_schema.key_column_usage k
             ON k.constraint_schema = tc.constraint_schema
            AND k.constraint_name = tc.constraint_name
            AND k.table_name = tc.table_name
           WHERE tc.table_schema = $1 AND tc.table_name = $2
             AND tc.constraint_type = 'PRIMARY KEY'
           ORDER BY k.ordinal_position""",
        schema, spec.name,
    )  # fmt: skip
    return tuple(r["c"] for r in rows)


async def count_rows(conn: asyncpg.Connection, table: SourceTable) -> int:
    return int(await conn.fetchval(f"SELECT count(*) FROM {table.qualified}"))


def _identity_sql(table: SourceTable) -> str:
    present = [c for c in table.spec.identity if c in table.columns]
    if not present:
        return "md5(row_to_json(t)::text)"
    return f"md5(json_build_array({', '.join('t.' + quote_ident(c) for c in present)})::text)"


# One batch: (legacy id or None, row_to_json text, identity hash or None).
SourceRow = tuple[str | None, str, str | None]


async def stream(
    conn: asyncpg.Connection, table: SourceTable, *, batch_size: int
) -> AsyncIterator[list[SourceRow]]:
    """Every row of the table once, in batches, through server-side cursors.

    Keyed rows come in physical order (no sort on the source). Rows without a usable
    key (NULL or blank) come last, ordered by an identity hash so that identical rows
    get the same ordinal on every run.
    """
    key = table.key_sql
    if key is not None:
        keyed = await conn.cursor(
            f"""SELECT {key}, row_to_json(t)::text FROM {table.qualified} t
                WHERE NULLIF(btrim({key}), '') IS NOT NULL"""
        )
        while rows := await keyed.fetch(batch_size):
            yield [(r[0], r[1], None) for r in rows]
    where = f"WHERE NULLIF(btrim({key}), '') IS NULL" if key is not None else ""
    keyless = await conn.cursor(
        f"""SELECT {_identity_sql(table)} AS h, row_to_json(t)::text AS r
            FROM {table.qualified} t {where} ORDER BY h, r"""
    )
    while rows := await keyless.fetch(batch_size):
        yield [(None, r[1], r[0]) for r in rows]
