"""GraphiQL in headless Chromium (Debian's chromium, driven by playwright-core from npm;
.ci/run installs both): the page loads from local assets (GRAPHIQL_ASSETS_DIR, no CDN),
the prefilled Authorization header works, the tour's first tab runs and shows its
result, and a jobProgress subscription streams to COMPLETED. Screenshots land in the
test's temporary folder."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import asyncpg
import httpx
import pytest

from comfygraph.db.users import create_user
from comfygraph.emulator import create_emulator_app
from comfygraph.server.app import create_app
from comfygraph.server.settings import Settings, WorkerSpec
from comfygraph.studio.auth import issue_token
from tests.servers import serve_in_thread

BROWSER = Path(__file__).with_name("browser")
CHROMIUM = Path("/usr/bin/chromium")
ASSETS = {"react@18.2.0": "react", "react-dom@18.2.0": "react-dom",
          "js-cookie@3.0.5": "js-cookie", "graphiql@3.8.3": "graphiql",
          "@graphiql/plugin-explorer@1.0.2": "@graphiql/plugin-explorer"}  # fmt: skip
SECRET = "browser-tests-secret-0123456789abcdef"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists()
    or not (BROWSER / "node_modules" / "playwright-core").exists()
    or shutil.which("node") is None,
    reason="needs /usr/bin/chromium and `npm install` in tests/browser (.ci/run does both)",
)


def _assets(folder: Path) -> Path:
    for served, package in ASSETS.items():
        target = folder / served
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(BROWSER / "node_modules" / package)
    return folder


@pytest.fixture(scope="module")
async def token(pool: asyncpg.Pool) -> str:
    async with pool.acquire() as conn:
        user = await create_user(conn, email="browser@example.com", password="browser-pass")
    return issue_token(SECRET, user["id"], role="user")


def test_graphiql_runs_the_tour_and_streams(dsn: str, token: str, tmp_path: Path) -> None:
    with serve_in_thread(
        create_emulator_app(speed=5.0, seed=1, output_dir=tmp_path / "out")
    ) as worker:
        settings = Settings(database_url=dsn, data_dir=tmp_path / "data", jwt_secret=SECRET,
                            comfy_workers=(WorkerSpec(worker, 0.5),), graphiql_token=token,
                            graphiql_assets_dir=_assets(tmp_path / "assets"))  # fmt: skip
        with serve_in_thread(create_app(settings, dsn=dsn)) as url:
            submitted = httpx.post(f"{url}/graphql", headers={"Authorization": f"Bearer {token}"},
                json={"query": 'mutation { submitJob(input: {workflowName: "product-image", '
                      'parameters: {prompt: "browser"}}) { job { id } } }'})  # fmt: skip
            job_id = submitted.json()["data"]["submitJob"]["job"]["id"]
            result = subprocess.run(
                ["node", str(BROWSER / "graphiql.mjs"), url, job_id, str(tmp_path)],
                capture_output=True, text=True, timeout=180, cwd=BROWSER,
            )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    for shot in ("graphiql-loaded", "graphiql-workflows", "graphiql-subscription"):
        assert (tmp_path / f"{shot}.png").stat().st_size > 1000
