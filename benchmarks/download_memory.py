#!/usr/bin/env python3
"""Peak memory while downloading a large output: it must not grow with the file's size.

The emulator runs in a separate process (`shotgraph emulator serve`) so that only the
client's memory is measured. A file of each size is uploaded through fal's storage flow
(multipart above 100 MiB, streamed from disk) and downloaded back with ``FalClient.download``
(streamed to disk, hashed on the way); each step runs in a fresh process and reports its
peak RSS. Printed: peak RSS for a 50 MB and a 500 MB file.

    .venv/bin/python benchmarks/download_memory.py [--sizes 50 500]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.emulator_process import emulator_process  # noqa: E402
from benchmarks.reference import PEAK_RSS, print_reference  # noqa: E402

TRANSFER = (
    PEAK_RSS
    + """
import asyncio, json, sys
from pathlib import Path
from runner.fal import FalClient, FalConfig

async def main(url, mode, path, target):
    async with FalClient(FalConfig(queue_url=url, rest_url=url)) as client:
        if mode == "upload":
            uploaded = await client.upload(Path(path), "video/mp4")
            return {"url": uploaded.url}
        got = await client.download(target, Path(path))
        return {"sha256": got.sha256, "size": got.size}

out = asyncio.run(main(*sys.argv[1:5]))
out["peak_rss_mb"] = peak_rss_mb()
print(json.dumps(out))
"""
)


def transfer(url: str, mode: str, path: Path, target: str = "") -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", TRANSFER, url, mode, str(path), target],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def make_file(path: Path, megabytes: int) -> str:
    digest = hashlib.sha256()
    block = os.urandom(1 << 20)
    with path.open("wb") as out:
        for i in range(megabytes):
            chunk = block[:-8] + i.to_bytes(8, "big")
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 500], help="MiB")
    args = parser.parse_args()
    print_reference()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with emulator_process("--state-dir", str(folder / "emulator")) as url:
            for size in args.sizes:
                source = folder / f"source-{size}.bin"
                expected = make_file(source, size)
                uploaded = transfer(url, "upload", source)
                got = transfer(url, "download", folder / f"got-{size}.bin", str(uploaded["url"]))
                assert got["sha256"] == expected, "the download does not match the upload"
                print(
                    f"{size:5d} MiB: upload peak RSS {uploaded['peak_rss_mb']:.0f} MB, "
                    f"download peak RSS {got['peak_rss_mb']:.0f} MB"
                )
                source.unlink()
                (folder / f"got-{size}.bin").unlink()
    print("peak memory does not grow with the file when the two sizes show the same figure")
    return 0


if __name__ == "__main__":
    sys.exit(main())
