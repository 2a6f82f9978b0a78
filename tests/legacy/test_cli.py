"""`comfygraph import-legacy` as an operator runs it: a real process, DATABASE_URL set."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def comfygraph(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "BROADCAST_URL")}
    return subprocess.run(
        [sys.executable, "-m", "comfygraph.server.cli", "import-legacy", *args],
        env={**clean, **env}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_import_dry_run_and_rollback(legacy: str, target: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": target, "COMFYGRAPH_DATA_DIR": str(tmp_path)}
    done = comfygraph("--source", legacy, "--worker-timeout", "0.5", env=env)
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert out[0].startswith("skip multitalk_jobs 'mt-lip1': duplicate job_id")
    assert out[1].split() == ["source", "read", "imported", "updated", "unchanged", "skipped",
                              "check"]  # fmt: skip
    assert out[2].split() == ["multitalk_jobs", "19", "18", "0", "0", "1", "ok"]
    assert out[-1] == "count check passed; committed 28 rows"
    # Not a terminal: progress is plain log lines on stderr.
    assert "comfygraph.legacy: datasets: 3/3 rows in" in done.stderr

    again = comfygraph("--source", legacy, "--dry-run", env=env)
    assert again.returncode == 0, again.stderr
    assert "multitalk_jobs 19 0 0 18 1 ok" in [
        " ".join(x.split()) for x in again.stdout.splitlines()
    ]
    assert again.stdout.splitlines()[-1] == "dry run: nothing was written"

    undone = comfygraph("--rollback", env=env)
    assert undone.returncode == 0, undone.stderr
    assert undone.stdout.splitlines() == [
        "removed 18 rows imported from multitalk_jobs",
        "removed 4 rows imported from style_transfers",
        "removed 3 rows imported from edited_images",
        "removed 3 rows imported from datasets",
    ]


def test_errors_are_one_line(legacy: str, target: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": target, "COMFYGRAPH_DATA_DIR": str(tmp_path)}
    missing = comfygraph("--source", legacy, "--source-schema", "archive", env=env)
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [
        "error: the legacy source has no table archive.multitalk_jobs, archive.style_transfers,"
        " archive.edited_images, archive.datasets (pass --tables to import the others)"
    ]
    bad_map = tmp_path / "map.csv"
    bad_map.write_text("mt-lip1,lipsync-two\n")
    refused = comfygraph("--source", legacy, "--workflow-map", str(bad_map), env=env)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"error: {bad_map}:1: unknown workflow 'lipsync-two' (choose from lipsync-one,"
        " lipsync-multi, video-lipsync, wan-i2v, img2img)"
    )
