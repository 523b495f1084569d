"""A second process for the store tests: races another over the same store, or is killed
with SIGKILL in the middle of writing. Run as ``python tests/store_worker.py MODE ...``."""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path

from runner.store import Owner, ResultRecord, Store, StoredFile, UploadRecord


def record(key: str, output: StoredFile, run_id: str) -> ResultRecord:
    return ResultRecord(
        key=key,
        node=key,
        kind="t2v",
        endpoint="fal-ai/ltx-video",
        backend="local",
        request_id=f"{run_id}:{key}",
        seed=7,
        output=output,
        content_type="video/mp4",
        cost_usd=0.02,
        result_url=None,
        extra={"seed": 7, "by": run_id},
    )


def hammer(root: Path, run_id: str, count: int, go: Path, shuffle: bool) -> None:
    """Render each of ``count`` keys unless cached or claimed, as the executor would."""
    keys = [f"key-{i:04d}" for i in range(count)]
    if shuffle:
        random.Random(run_id).shuffle(keys)
    rendered: list[str] = []
    lost: list[str] = []
    cached: list[str] = []
    with Store.open(root) as store:
        owner = Owner.current(run_id)
        print("ready", flush=True)
        while not go.exists():
            time.sleep(0.001)
        # Phase 1, pure contention: both claim the same keys (each in its own random order,
        # so both win some), and nobody releases.
        race = [f"race-{i:04d}" for i in range(count)]
        random.Random(f"race-{run_id}").shuffle(race)
        won = [key for key in race if store.claim(key, owner) is None]
        # Phase 2, the executor's protocol: check, claim, check again, render, release.
        for key in keys:
            if store.get_result(key) is not None:
                cached.append(key)
                continue
            if store.claim(key, owner) is not None:
                lost.append(key)
                continue
            # Another run may have finished and released the key since our miss above.
            if store.get_result(key) is not None:
                store.release(key, owner)
                cached.append(key)
                continue
            store.record_submission(key, owner, "fal-ai/ltx-video", {"request_id": key})
            staged = store.tmp_dir() / f"{run_id}-{key}.bin"
            staged.write_bytes(f"output of {key}\n".encode() * 100)
            output = store.put_file(staged, move=True)
            shared = store.tmp_dir() / f"{run_id}-shared.bin"
            shared.write_bytes(b"the same bytes from both processes\n" * 1000)
            store.put_file(shared)
            store.put_result(record(key, output, run_id))
            store.release(key, owner)
            rendered.append(key)
    print(
        json.dumps({"won": won, "rendered": rendered, "lost": lost, "cached": cached}), flush=True
    )


def put(root: Path, src: Path) -> None:
    """Put one file (the test feeds it through a FIFO and kills us half-way)."""
    with Store.open(root) as store:
        print("ready", flush=True)
        store.put_file(src)
    print("done", flush=True)


def churn(root: Path) -> None:
    """Write files, records, uploads and journal entries until killed."""
    rng = random.Random(os.getpid())
    with Store.open(root) as store:
        owner = Owner.current("churn")
        print("ready", flush=True)
        for i in range(10**9):
            key = f"churn-{i:06d}"
            store.claim(key, owner)
            store.record_submission(key, owner, "fal-ai/ltx-video", {"request_id": key})
            staged = store.tmp_dir() / f"churn-{i}.bin"
            staged.write_bytes(rng.randbytes(rng.randrange(1, 300_000)))
            output = store.put_file(staged, move=i % 2 == 0)
            staged.unlink(missing_ok=True)
            store.put_result(record(key, output, "churn"))
            store.put_upload(UploadRecord("local", output.sha256, f"http://x/{key}", None))
            store.release(key, owner)


def main(argv: list[str]) -> None:
    mode, root = argv[0], Path(argv[1])
    if mode == "hammer":
        hammer(root, argv[2], int(argv[3]), Path(argv[4]), argv[5] == "shuffle")
    elif mode == "put":
        put(root, Path(argv[2]))
    elif mode == "churn":
        churn(root)
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(sys.argv[1:])
