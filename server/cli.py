"""The `comfygraph` command line (CONTRACT.md). Every command exits non-zero with a
one-line reason on bad input or an unreachable dependency."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer

from comfygraph.db.embedded import EmbeddedPostgresError
from comfygraph.db.errors import DataError
from comfygraph.db.migrate import MigrationError
from comfygraph.server.database import DatabaseUnavailable
from comfygraph.server.ports import PortTaken
from comfygraph.server.settings import Settings, SettingsError, load_settings
from comfygraph.storage import StorageError

T = TypeVar("T")
# rich_markup_mode=None: click's plain help (typer's rich panels label flags `<bool>`).
cli = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
# Errors that mean "bad input or unreachable dependency": reported in one line.
EXPECTED = (
    SettingsError, DatabaseUnavailable, EmbeddedPostgresError, MigrationError, DataError,
    PortTaken,
    StorageError,
)  # fmt: skip


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def guarded(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except EXPECTED as exc:
        fail(str(exc))


def settings_or_fail(**overrides: Any) -> Settings:
    return guarded(lambda: load_settings(**overrides))


def run(factory: Callable[[], Awaitable[T]]) -> T:
    return guarded(lambda: asyncio.run(factory()))  # type: ignore[arg-type]


async def _open(settings: Settings) -> Any:
    """A migrated connection to the configured database (CLI commands)."""
    from comfygraph.db.migrate import apply_migrations
    from comfygraph.db.pool import connect
    from comfygraph.server.database import check_reachable, resolve_dsn

    dsn = await asyncio.to_thread(resolve_dsn, settings)
    await check_reachable(dsn, connect_timeout=settings.db_connect_timeout)
    conn = await connect(dsn, connect_timeout=settings.db_connect_timeout)
    await apply_migrations(conn)
    return conn


@cli.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, min=1, max=65535, help="TCP port."),
    demo: bool = typer.Option(False, help="Embedded everything plus an emulator worker."),
    workers: int = typer.Option(1, min=1, help="uvicorn worker processes."),
    access_log: bool = typer.Option(False, help="A structured log line per request."),
) -> None:
    """Run the API server (uvicorn)."""
    from comfygraph.server.logs import configure_logging
    from comfygraph.server.serve import serve_forever

    configure_logging()  # the server's logs are structured; other commands print lines

    settings = settings_or_fail()
    if not demo:  # the demo is one machine's trial: it may keep a generated secret
        guarded(settings.check_shared_secret)
    guarded(
        lambda: serve_forever(
            settings, host=host, port=port, demo=demo, workers=workers, access_log=access_log
        )
    )


@cli.command()
def migrate() -> None:
    """Apply pending schema migrations and exit."""
    from comfygraph.db.migrate import apply_migrations, load_migrations

    settings = settings_or_fail()

    async def go() -> list[str]:
        conn = await _open(settings)
        try:
            return await apply_migrations(conn)  # already applied by _open: reports nothing
        finally:
            await conn.close()

    run(go)
    typer.echo(f"schema up to date ({len(load_migrations())} migrations)")


@cli.command("create-user")
def create_user(
    email: str = typer.Option(..., help="Login email."),
    password: str = typer.Option(..., help="Password (at least 8 characters)."),
    admin: bool = typer.Option(False, help="Give the user the admin role."),
    name: str | None = typer.Option(None, help="Full name."),
) -> None:
    """Add a user."""
    from comfygraph.db.users import create_user as insert_user

    if len(password) < 8:
        fail("password must be at least 8 characters")
    if "@" not in email.strip("@"):
        fail(f"not an email address: {email!r}")
    settings = settings_or_fail()

    async def go() -> Any:
        conn = await _open(settings)
        try:
            role = "admin" if admin else "user"
            return await insert_user(
                conn, email=email, password=password, full_name=name, role=role
            )
        finally:
            await conn.close()

    row = run(go)
    typer.echo(f"created {row['role']} {row['email']} ({row['id']})")


@cli.command()
def token(
    email: str = typer.Option(..., help="The user's email."),
    ttl: int = typer.Option(3600, min=1, help="Lifetime in seconds."),
) -> None:
    """Print a signed bearer token for a user."""
    from comfygraph.db.users import get_user_by_email
    from comfygraph.studio.auth import issue_token

    settings = settings_or_fail()
    guarded(settings.check_shared_secret)  # else the token is good at no replica

    async def go() -> Any:
        conn = await _open(settings)
        try:
            return await get_user_by_email(conn, email)
        finally:
            await conn.close()

    row = run(go)
    if row is None:
        fail(f"no user with email {email}")
    secret = guarded(settings.effective_jwt_secret)
    typer.echo(
        issue_token(secret, row["id"], role=row["role"], ttl=ttl, version=row["token_version"])
    )


@cli.command()
def persist(
    files: list[Path] = typer.Argument(..., help="GraphQL documents, one per file."),
) -> None:
    """Register documents for PERSISTED_QUERIES_ONLY: each file's exact text, keyed by its
    sha256 (what the client sends as extensions.persistedQuery.sha256Hash)."""
    from comfygraph.server.persist_cmd import PersistError, read_documents, register

    try:
        documents = read_documents(files)
    except PersistError as exc:
        fail(str(exc))
    settings = settings_or_fail()

    async def go() -> int:
        conn = await _open(settings)
        try:
            return await register(conn, documents)
        finally:
            await conn.close()

    new = run(go)
    for digest, path, _ in documents:
        typer.echo(f"{digest}  {path}")
    typer.echo(f"{new} new, {len(documents) - new} already registered")


@cli.command("revoke-tokens")
def revoke_tokens(email: str = typer.Option(..., help="The user's email.")) -> None:
    """Make every token issued so far to a user stop working (within AUTH_CACHE_SECONDS)."""
    from comfygraph.db.users import revoke_tokens as revoke

    settings = settings_or_fail()

    async def go() -> Any:
        conn = await _open(settings)
        try:
            return await revoke(conn, email)
        finally:
            await conn.close()

    row = run(go)
    if row is None:
        fail(f"no user with email {email}")
    typer.echo(f"revoked every token of {row['email']} (token version {row['token_version']})")


@cli.command("import-legacy")
def import_legacy(
    source: str | None = typer.Option(None, help="Legacy PostgreSQL DSN, read only."),
    dry_run: bool = typer.Option(False, help="Report what would change; write nothing."),
    rollback: bool = typer.Option(False, help="Delete exactly the rows imports created."),
    workflow_map: str | None = typer.Option(None, help="CSV legacy_id,workflow (multitalk)."),
    comfy_url: str | None = typer.Option(None, help="Worker of style/edit rows (else NULL)."),
    tables: str | None = typer.Option(None, help="Only these tables (a missing one is an error)."),
    source_schema: str = typer.Option("public", help="Schema of the legacy tables."),
    source_timezone: str = typer.Option("UTC", help="Zone of timestamps stored without one."),
    worker_timeout: float = typer.Option(5.0, min=0.1, help="Seconds per worker request."),
    batch_size: int = typer.Option(2000, min=1, max=100_000, help="Rows per batch."),
) -> None:
    """Copy multitalk_jobs, style_transfers, edited_images and datasets into the job tables."""
    from pathlib import Path

    from comfygraph.server.legacy import LegacyCommand, run_legacy

    settings = settings_or_fail()
    cmd = LegacyCommand(
        source, dry_run, rollback, Path(workflow_map) if workflow_map else None, comfy_url,
        tables, source_schema, source_timezone, worker_timeout, batch_size,
    )  # fmt: skip
    run(lambda: run_legacy(settings, cmd, echo=typer.echo))


@cli.command("export-schema")
def export_schema() -> None:
    """Print the GraphQL SDL."""
    from comfygraph.resolvers.schema import build_schema

    sys.stdout.write(build_schema().as_str().rstrip() + "\n")


@cli.command()
def emulator(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8188, min=1, max=65535, help="TCP port."),
    speed: float = typer.Option(1.0, min=0.001, help="Simulated model nodes run this much faster."),
    fail_rate: float = typer.Option(0.0, min=0.0, max=1.0, help="Chance a model node fails."),
) -> None:
    """Run a ComfyUI-protocol emulator worker (development and tests; not a GPU)."""
    from comfygraph.emulator import run_emulator

    run_emulator(host, port, speed=speed, fail_rate=fail_rate)


@cli.command()
def workers(
    drain: str | None = typer.Option(None, help="Drain this worker: it takes no new jobs."),
    undrain: str | None = typer.Option(None, help="Give a drained worker jobs again."),
) -> None:
    """List configured workers (COMFY_WORKERS) and their health; exit 1 if any is down."""
    from comfygraph.server.demo import running_demo_worker
    from comfygraph.server.workers_cmd import print_workers, run, set_drain

    settings = settings_or_fail()
    if drain is not None or undrain is not None:
        if drain is not None and undrain is not None:
            fail("give --drain or --undrain, not both")
        url = str(drain if drain is not None else undrain).rstrip("/")
        if url not in {w.url.rstrip("/") for w in settings.comfy_workers}:
            known = ", ".join(w.url for w in settings.comfy_workers) or "none"
            fail(f"no configured worker {url!r} (COMFY_WORKERS: {known})")
        running = run_db(lambda conn: set_drain(conn, url, drain is not None))
        state = "draining" if drain is not None else "undrained"
        typer.echo(f"{url}: {state} ({running} job(s) still running there)")
        return
    if not settings.comfy_workers:
        demo_worker = running_demo_worker(settings.data_dir)
        if demo_worker is None:
            fail("no workers configured: set COMFY_WORKERS (a `serve --demo` runs its "
                 "emulator worker inside the server process)")  # fmt: skip
        typer.echo("the running `serve --demo`'s emulator worker (inside the server process):")
        settings = settings.model_copy(update={"comfy_workers": (demo_worker,)})
    found = run(settings)
    print_workers(found)
    down = [w.url for w in found if not w.healthy]
    if down:
        fail(f"unreachable: {', '.join(down)}")


workflows_cli = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="Workflow templates published at runtime."
)
cli.add_typer(workflows_cli, name="workflows")


@workflows_cli.command("add")
def workflows_add(
    file: Path = typer.Argument(..., help="A workflow template file (JSON)."),
) -> None:
    """Publish FILE as the next version of its workflow (every replica, no redeploy)."""
    from comfygraph.server import workflows_cmd

    try:
        name, data = workflows_cmd.read_template(file)
    except workflows_cmd.WorkflowFileError as exc:
        fail(str(exc))
    settings = settings_or_fail()
    version = run_db(lambda conn: workflows_cmd.add(conn, name, data))
    run(lambda: workflows_cmd.announce(settings))
    typer.echo(f"{name}: version {version} published")


@workflows_cli.command("deprecate")
def workflows_deprecate(name: str = typer.Argument(..., help="The workflow's name.")) -> None:
    """Refuse new submissions of workflow NAME (its jobs stay)."""
    from comfygraph.server import workflows_cmd

    settings = settings_or_fail()
    if not run_db(lambda conn: workflows_cmd.deprecate(conn, name)):
        fail(f"no workflow named {name!r}")
    run(lambda: workflows_cmd.announce(settings))
    typer.echo(f"{name}: deprecated")


def run_db(action: Callable[[Any], Awaitable[T]]) -> T:
    """Run `action(conn)` on a migrated connection to the configured database."""

    async def go() -> T:
        conn = await _open(settings_or_fail())
        try:
            return await action(conn)
        finally:
            await conn.close()

    return run(go)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # httpx logs every request at INFO: every health probe of every worker.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    cli()


if __name__ == "__main__":
    main()
