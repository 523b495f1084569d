"""A second process for the store tests: races another over the same store (through the
run's generation protocol), or is killed with SIGKILL in the middle of writing. Run as
``python tests/store/store_worker.py MODE ...``."""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # for tests.fake_fal

from runner.compile.steps import Step
from runner.fal import JobHandle
from runner.ltx.registry import registry
from runner.run.budget import Budget
from runner.run.generation import GenerationContext, generate
from runner.run.uploads import Materializer
from runner.store import Owner, ResultRecord, Store, StoredFile, TieredStore, UploadRecord
from tests.fake_fal import FakeFal
from tests.record_helpers import record as result_record


def record(key: str, output: StoredFile, run_id: str) -> ResultRecord:
    return result_record(
        key,
        output,
        node=key,
        request_id=f"{run_id}:{key}",
        seed=7,
        cost_usd=0.02,
        extra={"seed": 7, "by": run_id},
    )


def hammer(root: Path, run_id: str, count: int, shuffle: bool) -> None:
    """Race another process over the same keys, through the run's own claim protocol."""
    keys = [f"key-{i:04d}" for i in range(count)]
    if shuffle:
        random.Random(run_id).shuffle(keys)
    with Store.open(root) as store:
        owner = Owner.current(run_id)
        print("ready", flush=True)
        sys.stdin.readline()  # the go: both start together
        # Phase 1, pure contention: both claim the same keys (each in its own random order,
        # so both win some), and nobody releases.
        race = [f"race-{i:04d}" for i in range(count)]
        random.Random(f"race-{run_id}").shuffle(race)
        won = [key for key in race if store.claim(key, owner) is None]
        # Phase 2, what a run does for each key: runner.run.generation, its claim, journal,
        # submit (to an in-memory fal of this process's own), wait, fetch and store.
        made = asyncio.run(generate_all(store, owner, run_id, keys))
    print(json.dumps({"won": won, **made}), flush=True)


class _SubmitsTogether(FakeFal):
    """A fal whose submits wait until both processes have one to make: announced on stdout,
    released by the test's line on stdin. Whichever process the machine runs first, it holds
    at most one slot's worth of keys meanwhile, so both submit some."""

    def __init__(self, name: str) -> None:
        super().__init__(video=False, name=name)
        self._both: asyncio.Future[str] | None = None

    async def submit(
        self, endpoint_id: str, body: Mapping[str, Any], *, node: str | None = None
    ) -> JobHandle:
        if self._both is None:
            print("submitting", flush=True)
            self._both = asyncio.ensure_future(asyncio.to_thread(sys.stdin.readline))
        await asyncio.shield(self._both)
        return await super().submit(endpoint_id, body, node=node)


async def generate_all(
    store: Store, owner: Owner, run_id: str, keys: list[str]
) -> dict[str, list[str]]:
    fal = _SubmitsTogether(run_id)
    tiered = TieredStore(store)  # the local store alone, as a run without a bucket has it
    ctx = GenerationContext(
        store=tiered,
        client=fal,
        materializer=Materializer(tiered, fal, "fal"),
        owner=owner,
        backend="fal",
        budget=Budget(None),
        emit=lambda event: None,
        describe_issue=lambda step, issue: str(issue),
    )
    endpoint = registry().endpoint_by_id("fal-ai/ltx-video")
    assert endpoint is not None
    shared = store.tmp_dir() / f"{run_id}-shared.bin"
    shared.write_bytes(b"the same bytes from both processes\n" * 1000)
    slots = asyncio.Semaphore(8)  # jobs at once, as a run's --jobs

    async def one(key: str) -> tuple[str, str]:
        step = Step(key, "t2v", (), key, endpoint=endpoint, body={"prompt": key, "seed": 7})
        async with slots:
            made = await generate(step, {}, ctx)
            # Both processes land identical bytes too: the rename race is harmless.
            await asyncio.to_thread(store.put_file, shared)
        return key, made.how

    done = await asyncio.gather(*(one(key) for key in keys))
    assert len(fal.jobs) == sum(1 for _, how in done if how == "submitted")
    return {how: [key for key, made in done if made == how] for how in ("submitted", "received")}


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
            print(f"recorded {key}", flush=True)


def main(argv: list[str]) -> None:
    mode, root = argv[0], Path(argv[1])
    if mode == "hammer":
        hammer(root, argv[2], int(argv[3]), argv[4] == "shuffle")
    elif mode == "put":
        put(root, Path(argv[2]))
    elif mode == "churn":
        churn(root)
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(sys.argv[1:])
