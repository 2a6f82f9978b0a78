"""Storage figures: a large output streamed into local and S3 storage (moto, started
here on a free port) with the process's peak RSS, and the media facts of a long
animated WebP read from its chunk headers vs decoding every frame (main's way).

    python bench/storage.py [--mib 200] [--frames 600]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import resource
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from comfygraph.comfy.media import inspect_file
from comfygraph.storage import S3Options, open_storage
from comfygraph.studio.outputs import store_stream
from tests.s3server import create_bucket, moto_server


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def source(mib: int) -> AsyncIterator[bytes]:
    block = bytes(range(256)) * 256  # 64 KiB, as /view streams it
    for _ in range(mib * 16):
        yield block


async def stream_into(url: str, options: S3Options | None, mib: int) -> tuple[float, float]:
    storage = open_storage(url, "http://bench", options)
    before = rss_mib()
    start = time.perf_counter()
    stored, _ = await store_stream(storage, "workflows/b/j/big.bin", "big.bin", source(mib))
    elapsed = time.perf_counter() - start
    assert stored.size == mib * 1024 * 1024
    return elapsed, rss_mib() - before


def decode_all(data: bytes) -> float:
    with Image.open(io.BytesIO(data)) as img:
        total = 0
        for index in range(img.n_frames):
            img.seek(index)
            img.load()
            total += img.info.get("duration", 0)
    return total / 1000


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=200)
    parser.add_argument("--frames", type=int, default=600)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t, grew = await stream_into(f"file://{tmp}", None, args.mib)
        print(f"local  {args.mib} MiB streamed in {t:.2f} s, peak RSS grew {grew:.0f} MiB")
    with moto_server() as endpoint:
        options = S3Options(endpoint, "us-east-1", "testing", "testing")
        bucket = create_bucket(endpoint)
        t, grew = await stream_into(f"s3://{bucket}/b", options, args.mib)
        print(f"s3     {args.mib} MiB streamed in {t:.2f} s, peak RSS grew {grew:.0f} MiB")
    frames = [
        Image.new("RGB", (512, 512), (n * 37 % 256, n * 91 % 256, 9)) for n in range(args.frames)
    ]
    out = io.BytesIO()
    frames[0].save(out, format="WEBP", save_all=True, append_images=frames[1:], duration=40)
    data = out.getvalue()
    with tempfile.NamedTemporaryFile(suffix=".webp") as handle:
        handle.write(data)
        handle.flush()
        start = time.perf_counter()
        facts = inspect_file("a.webp", Path(handle.name))
        headers = time.perf_counter() - start
    start = time.perf_counter()
    decoded = decode_all(data)
    full = time.perf_counter() - start
    print(
        f"webp   {facts.frames} frames 512x512: headers {headers * 1000:.1f} ms "
        f"({facts.duration_seconds} s), decoding every frame {full * 1000:.0f} ms ({decoded} s)"
    )


if __name__ == "__main__":
    asyncio.run(main())
