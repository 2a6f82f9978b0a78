"""docker-compose.yml and deploy/kubernetes/ are valid as written: `docker compose
config` (v1's `docker-compose config` where v2 is missing) and the Kubernetes schemas
bundled with kubernetes-validate (offline)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SECRET = {"JWT_SECRET": "compose-config-check-0123456789"}


def compose() -> list[str]:
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    v1 = shutil.which("docker-compose")
    if v1:
        return [v1]
    pytest.skip("neither `docker compose` nor docker-compose is installed (.ci/run installs it)")


def config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k != "JWT_SECRET"}
    return subprocess.run(
        [*compose(), "-f", str(ROOT / "docker-compose.yml"), "config"],
        env={**clean, **env}, capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip


def test_compose_file_is_valid_and_complete() -> None:
    result = config(SECRET)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert {"postgres", "redis", "minio", "proxy", "api-1", "api-2"} <= services.keys()
    for name in ("api-1", "api-2"):
        env = services[name]["environment"]
        assert env["PUBLIC_BASE_URL"] == "http://localhost:8000"
        assert env["STORAGE_URL"].startswith("s3://") and env["S3_ENDPOINT_URL"]
    assert (ROOT / "deploy" / "nginx.conf").exists()


def test_compose_refuses_to_start_without_a_secret() -> None:
    result = config({})
    assert result.returncode != 0
    assert "JWT_SECRET" in result.stderr


def test_kubernetes_manifests_match_the_schemas() -> None:
    files = sorted(str(p) for p in (ROOT / "deploy" / "kubernetes").glob("*.yaml"))
    kinds = {yaml.safe_load(Path(f).read_text())["kind"] for f in files}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "Job", "ConfigMap",
            "Secret"} <= kinds  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "-k", "1.30.0", "--strict", *files],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
