from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import free_port

SECRET = "cli-test-secret-0123456789abcdef-xyz"


def comfygraph(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "BROADCAST_URL")}
    return subprocess.run(
        [sys.executable, "-m", "comfygraph.server.cli", *args],
        env={**clean, **env}, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def test_unreachable_database_exits_with_one_line_naming_the_host(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    result = comfygraph(
        "serve", "--port", str(free_port()),  # a free one: the port is checked first
        env={"DATABASE_URL": f"postgresql://app@127.0.0.1:{port}/app",
             "COMFYGRAPH_DATA_DIR": str(tmp_path), "JWT_SECRET": SECRET},
    )  # fmt: skip
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"127.0.0.1:{port}" in lines[0] and lines[0].startswith("error:")


@pytest.mark.parametrize(
    ("variable", "value"),
    [("DB_POOL_MAX", "many"), ("COMFY_WORKERS", "ftp://gpu-1"), ("ALLOW_ANONYMOUS", "maybe"),
     ("DATABASE_URL", "mysql://db/app"), ("COMFY_WORKERS", "http://gpu-1@cheap"),
     ("JWT_SECRET", "short"), ("STORAGE_URL", "gopher://x")],
)  # fmt: skip
def test_bad_setting_names_the_variable(tmp_path: Path, variable: str, value: str) -> None:
    result = comfygraph("serve", env={variable: value, "COMFYGRAPH_DATA_DIR": str(tmp_path)})
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]


@pytest.mark.parametrize(
    "value", ["memory://", "memory://local", "redis://127.0.0.1:6379/0", "postgres://app@db/app"]
)
def test_documented_broadcast_urls_are_accepted(value: str) -> None:
    """The README's BROADCAST_URL forms, `memory://` as written there included."""
    from comfygraph.server.settings import Settings

    assert Settings(broadcast_url=value).effective_broadcast_url() == value


def test_user_and_token_commands(dsn: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": dsn, "COMFYGRAPH_DATA_DIR": str(tmp_path), "JWT_SECRET": SECRET}
    made = comfygraph("create-user", "--email", "cli@example.com", "--password", "hunter22!",
                      "--admin", env=env)  # fmt: skip
    assert made.returncode == 0, made.stderr
    again = comfygraph("create-user", "--email", "CLI@example.com", "--password", "hunter22!",
                       env=env)  # fmt: skip
    assert again.returncode != 0 and "already exists" in again.stderr
    short = comfygraph("create-user", "--email", "x@example.com", "--password", "pw", env=env)
    assert short.returncode != 0 and "8 characters" in short.stderr

    token = comfygraph("token", "--email", "cli@example.com", "--ttl", "60", env=env)
    assert token.returncode == 0, token.stderr
    assert token.stdout.count(".") == 2  # header.payload.signature
    missing = comfygraph("token", "--email", "nobody@example.com", env=env)
    assert missing.returncode != 0 and "no user" in missing.stderr


def test_workers_command_shows_health_and_fails_on_a_down_worker(tmp_path: Path) -> None:
    from comfygraph.emulator import create_emulator_app
    from tests.servers import serve_in_thread

    dead = f"http://127.0.0.1:{free_port()}"
    with serve_in_thread(create_emulator_app(output_dir=tmp_path / "out")) as up:
        env = {"COMFYGRAPH_DATA_DIR": str(tmp_path), "COLUMNS": "200"}
        ok = comfygraph("workers", env={**env, "COMFY_WORKERS": f"{up}@1.25"})
        assert ok.returncode == 0, ok.stderr
        assert up in ok.stdout and "yes" in ok.stdout and "emulator" in ok.stdout
        both = comfygraph("workers", env={**env, "COMFY_WORKERS": f"{up},{dead}"})
    assert both.returncode == 1
    assert both.stderr.strip().splitlines()[-1] == f"error: unreachable: {dead}"


def test_a_taken_port_is_one_error_line_and_nothing_starts(dsn: str, tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"DATABASE_URL": dsn, "COMFYGRAPH_DATA_DIR": str(tmp_path)}
        result = comfygraph("serve", "--demo", "--port", str(port), env=env)
    assert result.returncode != 0
    assert result.stdout == ""  # no banner, no token
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and str(port) in lines[0], lines
    assert not (tmp_path / "demo-worker.url").exists()


def test_help_has_no_type_labels_on_flags(tmp_path: Path) -> None:
    result = comfygraph("serve", "--help", env={"COMFYGRAPH_DATA_DIR": str(tmp_path)})
    assert result.returncode == 0 and "--demo" in result.stdout
    assert "<bool>" not in result.stdout


def test_workers_shows_the_running_demos_worker(tmp_path: Path) -> None:
    from comfygraph.emulator import create_emulator_app
    from comfygraph.server.demo import demo_worker_file
    from tests.servers import serve_in_thread

    env = {"COMFYGRAPH_DATA_DIR": str(tmp_path), "COLUMNS": "200", "COMFY_WORKERS": ""}
    none = comfygraph("workers", env=env)
    assert none.returncode != 0 and "--demo" in none.stderr, none.stderr
    with serve_in_thread(create_emulator_app(output_dir=tmp_path / "out")) as up:
        demo_worker_file(tmp_path).write_text(up + "\n")  # what a running demo leaves
        shown = comfygraph("workers", env=env)
    assert shown.returncode == 0, shown.stderr
    assert up in shown.stdout and "demo" in shown.stdout and "yes" in shown.stdout


def test_workers_drain_records_it_for_every_replica_and_refuses_unknown_urls(
    tmp_path: Path, dsn: str
) -> None:
    import asyncio

    import asyncpg

    env = {"DATABASE_URL": dsn, "COMFYGRAPH_DATA_DIR": str(tmp_path),
           "COMFY_WORKERS": "http://gpu-1:8188"}  # fmt: skip
    drained = comfygraph("workers", "--drain", "http://gpu-1:8188", env=env)
    assert drained.returncode == 0, drained.stderr
    assert "draining" in drained.stdout
    unknown = comfygraph("workers", "--drain", "http://gpu-9:8188", env=env)
    assert unknown.returncode != 0 and unknown.stderr.startswith("error: no configured worker")

    async def draining() -> bool:
        conn = await asyncpg.connect(dsn)
        try:
            return bool(await conn.fetchval("SELECT draining FROM worker_drains WHERE url = $1",
                                            "http://gpu-1:8188"))  # fmt: skip
        finally:
            await conn.close()

    assert asyncio.run(draining()) is True
    assert comfygraph("workers", "--undrain", "http://gpu-1:8188", env=env).returncode == 0
    assert asyncio.run(draining()) is False


def test_an_external_database_without_jwt_secret_is_refused(dsn: str, tmp_path: Path) -> None:
    """Replicas sharing a database must share the secret: a generated one (per data dir)
    would make each reject the others' tokens. Embedded and the demo still generate one."""
    env = {"DATABASE_URL": dsn, "COMFYGRAPH_DATA_DIR": str(tmp_path)}
    for args in (("serve", "--port", str(free_port())), ("token", "--email", "a@example.com")):
        result = comfygraph(*args, env=env)
        assert result.returncode != 0, result.stdout
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: JWT_SECRET"), result.stderr
        assert "DATABASE_URL" in lines[0]
    assert not (tmp_path / "jwt_secret").exists()
