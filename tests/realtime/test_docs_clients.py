"""Every ```js and ```python block of docs/clients.md (Apollo Client, urql, graphql-ws,
graphql-sse, gql) runs against a live server with an emulator worker: it submits a job
and follows its progress to COMPLETED. JavaScript runs under Node with the packages of
tests/browser (npm install, as .ci/run does); Python with gql (a dev dependency)."""

from __future__ import annotations

import asyncio
import importlib.util
import re
import shutil
import sys
from pathlib import Path

import pytest

from tests.realtime.conftest import User
from tests.realtime.harness import Running

ROOT = Path(__file__).resolve().parents[2]
BROWSER = ROOT / "tests" / "browser"
DOC = ROOT / "docs" / "clients.md"
# Node 20 has no global WebSocket (a browser and Node 22 do).
NODE_PRELUDE = "import WebSocket from 'ws';\nglobalThis.WebSocket ??= WebSocket;\n"


def blocks(language: str) -> list[tuple[str, str]]:
    text = DOC.read_text()
    found = []
    for heading, body in re.findall(
        r"^## ([^\n]+)$|```" + language + r"\n(.*?)```", text, re.M | re.S
    ):
        if heading:
            title = heading
        elif body:
            found.append((title, body))
    return found


JS = blocks("js")
PYTHON = blocks("python")


def localise(code: str, server: Running, token: str) -> str:
    ws = server.url.replace("http://", "ws://", 1)
    return (
        code.replace("<token from login>", token)
        .replace("ws://localhost:8000", ws)
        .replace("http://localhost:8000", server.url)
    )


async def run(*argv: str) -> list[str]:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()[-3000:]
    return out.decode().splitlines()


def test_the_page_has_its_examples() -> None:
    assert [t for t, _ in JS] == ["Apollo Client", "urql", "graphql-ws in a browser",
                                  "graphql-sse (Server-Sent Events)"]  # fmt: skip
    assert [t for t, _ in PYTHON] == ["gql (Python)"]


@pytest.mark.skipif(
    shutil.which("node") is None
    or not all((BROWSER / "node_modules" / p).exists()
               for p in ("@apollo/client", "@urql/core", "graphql-ws", "graphql-sse", "ws")),
    reason="needs node and `npm install` in tests/browser (.ci/run does it)",
)  # fmt: skip
@pytest.mark.parametrize("title,code", JS, ids=[t for t, _ in JS])
async def test_a_javascript_example_follows_a_job(
    server: Running, users: dict[str, User], title: str, code: str
) -> None:
    # In tests/browser so that node finds its node_modules.
    slug = re.sub(r"\W+", "-", title)
    script = BROWSER / f".docs-example-{slug}.mjs"
    script.write_text(NODE_PRELUDE + localise(code, server, users["alice"].token))
    try:
        lines = await run("node", str(script))
    finally:
        script.unlink()
    assert lines and lines[-1] == "COMPLETED 100", lines


@pytest.mark.skipif(importlib.util.find_spec("gql") is None, reason="gql is a dev dependency")
@pytest.mark.parametrize("title,code", PYTHON, ids=[t for t, _ in PYTHON])
async def test_a_python_example_follows_a_job(
    server: Running, users: dict[str, User], tmp_path: Path, title: str, code: str
) -> None:
    script = tmp_path / "example.py"
    script.write_text(localise(code, server, users["bob"].token))
    lines = await run(sys.executable, str(script))
    assert lines and lines[-1] in ("COMPLETED 100", "COMPLETED 100.0"), lines
