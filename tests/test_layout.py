"""The package's layout: one import name, modules that import alone, types without I/O,
and a wheel that shares an environment with PyPI's `schema` and a ComfyUI-style `comfy`."""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys
import sysconfig
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import comfygraph

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("asyncpg", "httpx", "PIL", "bcrypt")


def all_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(comfygraph.__path__, "comfygraph."))


def run_python(code: str, *, python: str = sys.executable) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, "-c", code], capture_output=True, text=True, timeout=120, cwd="/"
    )


def test_every_module_imports_alone_in_a_fresh_interpreter() -> None:
    modules = all_modules()
    assert len(modules) > 100, modules  # the walk found the package, not an empty stub
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda m: (m, run_python(f"import {m}")), modules))
    failed = {m: r.stderr.strip().splitlines()[-1] for m, r in results if r.returncode != 0}
    assert not failed, failed


def test_the_graphql_types_load_no_io_library() -> None:
    schema_modules = [
        m for m in all_modules() if m.startswith(("comfygraph.schema", "comfygraph.domain"))
    ]
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in schema_modules)
        + f"print(','.join(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"comfygraph.schema loaded {result.stdout.strip()}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
         "-w", str(out), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (found,) = out.glob("comfygraph-*.whl")
    return found


def test_the_wheel_installs_only_comfygraph_at_the_top(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    tops = {name.split("/")[0] for name in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"comfygraph"}
    # Data files travel with the package: migrations and the built-in workflows.
    assert any(n.startswith("comfygraph/db/migrations/") and n.endswith(".sql") for n in names)
    assert any(n.startswith("comfygraph/comfy/workflows/") for n in names)
    assert "comfygraph/emulator/app.py" in names


def test_the_wheel_lives_beside_pypi_schema_and_a_comfy_package(
    wheel: Path, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "schema>=0.7"], check=True, capture_output=True, timeout=300)
    subprocess.run([*pip, "--no-deps", str(wheel)], check=True, capture_output=True, timeout=300)
    site = Path(
        run_python(
            "import sysconfig; print(sysconfig.get_path('purelib'))", python=python
        ).stdout.strip()
    )
    # ComfyUI's own top-level package, as a worker's environment has it.
    (site / "comfy").mkdir()
    (site / "comfy" / "__init__.py").write_text("WHO = 'comfyui'\n")
    # comfygraph's dependencies come from this test's environment, after the venv's own.
    (site / "zz-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")

    check = run_python(
        "import schema, comfy, comfygraph.server.app, comfygraph.comfy.client\n"
        "assert hasattr(schema, 'Schema'), schema.__file__\n"  # PyPI's validation library
        "assert comfy.WHO == 'comfyui'\n"
        "print(comfygraph.__file__)",
        python=python,
    )
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip().startswith(str(site)), check.stdout
    cli = subprocess.run(
        [str(venv / "bin" / "comfygraph"), "--help"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": ""},
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert "serve" in cli.stdout
