"""A lockfile as a complete run writes it, without rendering: for tests of what reads locks
(review, diffs, merges), where rendering real clips would only cost time."""

from __future__ import annotations

import hashlib
from pathlib import Path

from runner.compile.check import check_pipeline
from runner.lock import build_lock, lock_path, write_lock
from runner.store import StoredFile
from tests.record_helpers import step_record


def locked(pipeline: Path) -> Path:
    """Write the lock a complete fal run of ``pipeline`` would write: every output's hash
    derives from its node's key (the lock's own writer, `build_lock`, does the rest)."""
    result = check_pipeline(pipeline, backend="fal")
    compiled = result.require()
    records = {}
    for name, step in compiled.steps.items():
        digest = hashlib.sha256(f"output of {step.key}".encode()).hexdigest()
        records[name] = step_record(
            name,
            step,
            StoredFile(digest, 1000 + int(digest[:4], 16)),
            backend="fal",
            request_id=f"req-{step.key[:8]}" if step.endpoint else None,
            content_type="video/mp4" if step.kind != "frame" else "image/png",
            cost_usd=step.estimate.usd if step.estimate else None,
            extra={"returned_seed": step.seed},
        )
    write_lock(lock_path(pipeline), build_lock(compiled, records, result.outputs))
    return lock_path(pipeline)
