"""Benchmark: `import-legacy` of 100k and 1M legacy rows; wall time and peak memory.

    python bench/legacy.py [--rows 100000 --rows 1000000] [--dsn postgresql://...]

Each size runs in a child process of its own, so its peak RSS (ru_maxrss) is its own:
the peak must not grow with the number of rows. The legacy source is built on the
server with generate_series (60% multitalk_jobs, 20% style_transfers, 15% edited_images,
5% datasets; about one row in a thousand still in flight on an unreachable worker), then
imported through the command's own code path, then imported again (nothing changed).
Databases are created on --dsn's server (default: DATABASE_URL, else the local one)
and dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import comfygraph.server.legacy
from comfygraph.db.migrate import apply_migrations
from comfygraph.server.legacy import LegacyCommand, import_command
from comfygraph.server.settings import Settings

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
DEAD_WORKER = "http://127.0.0.1:9"  # discard port: nothing answers

SCHEMA = """
CREATE TABLE multitalk_jobs (
    job_id text PRIMARY KEY, status text, timestamp_submitted timestamptz,
    timestamp_completed timestamptz, filename text, subfolder text, image_filename text,
    audio_filename text, width integer NOT NULL, height integer NOT NULL, trim_to_audio boolean,
    comfy_url text, error_message text, video_url text, created_at timestamptz,
    updated_at timestamptz);
CREATE TABLE style_transfers (
    id uuid PRIMARY KEY, created_at timestamp, source_image_url text, style_image_url text,
    prompt text, result_image_url text, workflow_name text DEFAULT 'StyleTransfer',
    model_used text, processing_time_seconds integer, user_ip text, status text,
    comfyui_prompt_id text, error_message text, updated_at timestamp);
CREATE TABLE edited_images (
    id uuid PRIMARY KEY, created_at timestamptz, source_image_url text, prompt text,
    result_image_url text, workflow_name text DEFAULT 'image-edit', model_used text,
    processing_time_seconds integer, user_ip text, status text);
CREATE TABLE datasets (
    id uuid PRIMARY KEY, character_name text, images jsonb, captions jsonb, status text,
    created_at timestamp);
"""

# $1 = rows of the table; i runs 1..$1; one row in a thousand is in flight.
FILL = {
    "multitalk_jobs": f"""
INSERT INTO multitalk_jobs SELECT
    md5('mt' || i)::uuid::text,
    CASE WHEN i % 1000 = 0 THEN 'processing' WHEN i % 1000 = 1 THEN 'submitted'
         WHEN i % 10 = 7 THEN 'error' WHEN i % 5000 = 3 THEN 'lost?' ELSE 'completed' END,
    t, t + make_interval(secs => 60 + i % 240),
    CASE WHEN i % 20 = 1 THEN 'ComfyUI_' || i || '_.png' ELSE 'MultiTalk_' || i || '.mp4' END,
    'video', 'in_' || i || '.png',
    CASE WHEN i % 20 IN (0, 1) THEN NULL WHEN i % 20 = 2 THEN 'a_' || i || '.wav,b_' || i || '.wav'
         ELSE 'voice_' || i || '.mp3' END,
    640, 360, true,
    CASE WHEN i % 1000 IN (0, 1) THEN '{DEAD_WORKER}' ELSE 'http://gpu-' || i % 4 || ':8188' END,
    CASE WHEN i % 10 = 7 THEN 'CUDA out of memory' END,
    CASE WHEN i % 10 <> 7 AND i % 20 <> 1
         THEN 'https://sb.example/storage/videos/' || i || '.mp4' END,
    t, t + make_interval(secs => 60 + i % 240)
FROM generate_series(1, $1) i, LATERAL (SELECT '2023-01-01'::timestamptz + i * interval '30 s') x(t)
""",
    "style_transfers": """
INSERT INTO style_transfers SELECT
    md5('st' || i)::uuid, t, 'https://sb.example/src/' || i || '.png',
    'https://sb.example/style/' || i % 50 || '.png', 'стиль ✨ prompt ' || i,
    CASE WHEN i % 10 <> 7 THEN 'https://sb.example/res/' || i || '.png' END, 'StyleTransfer',
    'flux', 5 + i % 30, '203.0.113.' || i % 250,
    CASE WHEN i % 1000 = 0 THEN 'pending' WHEN i % 10 = 7 THEN 'failed' ELSE 'completed' END,
    md5('p' || i)::uuid::text, CASE WHEN i % 10 = 7 THEN 'node failed' END,
    t + make_interval(secs => 5 + i % 30)
FROM generate_series(1, $1) i, LATERAL (SELECT '2023-02-01'::timestamp + i * interval '30 s') x(t)
""",
    "edited_images": """
INSERT INTO edited_images SELECT
    md5('ed' || i)::uuid, t, 'https://sb.example/edit/' || i || '.png', 'edit ' || i,
    CASE WHEN i % 10 <> 7 THEN 'https://sb.example/edited/' || i || '.png' END, 'image-edit',
    'qwen-edit', 3 + i % 20, '198.51.100.' || i % 250,
    CASE WHEN i % 1000 = 0 THEN 'processing' WHEN i % 10 = 7 THEN 'failed' ELSE 'completed' END
FROM generate_series(1, $1) i, LATERAL (SELECT '2023-03-01'::timestamptz + i * interval '30 s') x(t)
""",
    "datasets": """
INSERT INTO datasets SELECT
    md5('ds' || i)::uuid, 'character ' || i,
    jsonb_build_array('https://sb.example/ds/' || i || '/1.png',
                      'https://sb.example/ds/' || i || '/2.png'),
    jsonb_build_object('1.png', 'a portrait ' || i, '2.png', 'profile ' || i), 'completed',
    '2023-04-01'::timestamp + i * interval '30 s'
FROM generate_series(1, $1) i
""",
}
SHARE = {"multitalk_jobs": 0.60, "style_transfers": 0.20, "edited_images": 0.15, "datasets": 0.05}


def with_database(dsn: str, name: str) -> str:
    return dsn.rsplit("/", 1)[0] + "/" + name


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a local process (a PostgreSQL backend on this machine), or NaN."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


CPU: dict[str, float] = {}
_import_legacy = comfygraph.server.legacy.import_legacy


async def _measured(source: asyncpg.Connection, target: asyncpg.Connection, *args: Any,
                    **kwargs: Any) -> Any:  # fmt: skip
    """The command's import, with the CPU time of both database backends recorded: on a
    shared machine wall time alone says little."""
    pids = source.get_server_pid(), target.get_server_pid()
    before = [_cpu_seconds(p) for p in pids]
    try:
        return await _import_legacy(source, target, *args, **kwargs)
    finally:
        CPU["source_pg"], CPU["target_pg"] = (
            _cpu_seconds(p) - b for p, b in zip(pids, before, strict=True)
        )


comfygraph.server.legacy.import_legacy = _measured  # type: ignore[assignment]


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def child(rows: int, admin: str, batch_size: int) -> dict[str, float]:
    tag = uuid.uuid4().hex[:8]
    src_name, dst_name = f"bench_legacy_src_{tag}", f"bench_legacy_dst_{tag}"
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f"CREATE DATABASE {src_name}")
        await conn.execute(f"CREATE DATABASE {dst_name}")
    finally:
        await conn.close()
    source, target = with_database(admin, src_name), with_database(admin, dst_name)
    try:
        started = time.perf_counter()
        conn = await asyncpg.connect(source)
        try:
            await conn.execute(SCHEMA)
            for table, sql in FILL.items():
                await conn.execute(sql, round(rows * SHARE[table]))
            await conn.execute("VACUUM ANALYZE")
        finally:
            await conn.close()
        conn = await asyncpg.connect(target)
        try:
            await apply_migrations(conn)
        finally:
            await conn.close()
        built = time.perf_counter() - started

        settings = Settings(database_url=target, data_dir=Path(tempfile.mkdtemp()))
        cmd = LegacyCommand(source=source, worker_timeout=1.0, batch_size=batch_size)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        started, cpu = time.perf_counter(), _own_cpu()
        report = await import_command(settings, cmd, echo=lambda _: None)
        first = time.perf_counter() - started
        python_cpu, first_cpu = _own_cpu() - cpu, dict(CPU)
        rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        started = time.perf_counter()
        again = await import_command(settings, cmd, echo=lambda _: None)
        second = time.perf_counter() - started
        rss_peak2 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        read = sum(t.read for t in report.tables)
        assert report.committed and read == sum(round(rows * s) for s in SHARE.values())
        assert sum(t.imported for t in report.tables) == read
        assert sum(t.unchanged for t in again.tables) == read
        return {
            "rows": read, "build_s": built, "import_s": first, "reimport_s": second,
            "rss_before_mb": rss_before, "rss_peak_mb": rss_peak, "rss_peak_rerun_mb": rss_peak2,
            "python_cpu_s": python_cpu, "target_cpu_s": first_cpu["target_pg"],
            "source_cpu_s": first_cpu["source_pg"], "load": os.getloadavg()[0],
            "adopted": sum(t.adopted for t in report.tables),
            "lost": sum(t.lost for t in report.tables),
        }  # fmt: skip
    finally:
        conn = await asyncpg.connect(admin)
        try:
            for name in (src_name, dst_name):
                await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, action="append", help="legacy rows (repeatable)")
    parser.add_argument("--dsn", default=os.environ.get("DATABASE_URL", DEFAULT_DSN))
    parser.add_argument("--batch-size", type=int, default=LegacyCommand.batch_size)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = args.rows or [100_000, 1_000_000]
    if args.child:
        print(json.dumps(asyncio.run(child(sizes[0], args.dsn, args.batch_size))))
        return
    print(f"{'rows':>9} {'import s':>9} {'rows/s':>8} {'re-run s':>9} {'RSS before':>11}"
          f" {'RSS peak':>9} {'peak-before':>12}  CPU s: python/target pg/source pg")  # fmt: skip
    for rows in sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--child", "--rows", str(rows), "--dsn", args.dsn,
             "--batch-size", str(args.batch_size)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if out.returncode != 0:
            sys.exit(f"{rows} rows failed:\n{out.stderr}")
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{r['rows']:>9} {r['import_s']:>9.1f} {r['rows'] / r['import_s']:>8.0f}"
            f" {r['reimport_s']:>9.1f} {r['rss_before_mb']:>9.0f}MB {r['rss_peak_mb']:>7.0f}MB"
            f" {r['rss_peak_mb'] - r['rss_before_mb']:>10.0f}MB"
            f"  {r['python_cpu_s']:.0f}/{r['target_cpu_s']:.0f}/{r['source_cpu_s']:.0f}"
            f"   (load {r['load']:.1f}; source built in {r['build_s']:.0f} s;"
            f" {r['adopted']:.0f} adopted, {r['lost']:.0f} lost;"
            f" re-run peak {r['rss_peak_rerun_mb']:.0f}MB)"
        )


if __name__ == "__main__":
    main()
