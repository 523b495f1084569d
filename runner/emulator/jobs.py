"""Jobs: one record per accepted submission, journaled to disk on every change.

Each job is a small JSON file ``jobs/<request id>.json`` replaced atomically, so recording a
change costs the same at job 5,000 as at job 1, and an emulator killed at any moment comes
back with every job it had accepted.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runner import atomic

IN_QUEUE = "IN_QUEUE"
IN_PROGRESS = "IN_PROGRESS"
COMPLETED = "COMPLETED"
STATES = (IN_QUEUE, IN_PROGRESS, COMPLETED)


def canonical_json(value: object) -> str:
    """The one spelling of a JSON value: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint(endpoint_id: str, body: object) -> str:
    """What makes two submissions the same request: sha256 of the endpoint id and the
    canonical JSON body (the key ``/_emulator/stats`` counts submissions by)."""
    return hashlib.sha256(f"{endpoint_id}\n{canonical_json(body)}".encode()).hexdigest()


def fal_time(when: float) -> str:
    """Unix seconds as fal writes times (log entries, the request listing): ISO 8601 UTC,
    to the millisecond, with a ``Z``."""
    return (
        datetime.fromtimestamp(when, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


@dataclass
class JobError:
    """How a failed job answers: the result route's HTTP status and body, and the
    ``error``/``error_type`` its status carries."""

    status: int
    body: dict[str, Any]
    error: str
    error_type: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Job:
    """One request in the emulated queue."""

    id: str
    endpoint: str
    body: dict[str, Any]
    seq: int
    fingerprint: str
    submitted_at: float
    state: str = IN_QUEUE
    started_at: float | None = None
    completed_at: float | None = None
    logs: list[dict[str, Any]] = field(default_factory=list)
    # The model's output; file URLs are origin-relative (``/files/...``) so that an
    # emulator restarted on another port still serves them.
    result: dict[str, Any] | None = None
    error: JobError | None = None
    fault: dict[str, Any] | None = None
    output_ttl: float | None = None
    # The pipeline node, when shotgraph's local backend names it: on the animatic, nowhere
    # else (not in the fingerprint, not in the result).
    node: str | None = None

    @property
    def prompt(self) -> str | None:
        value = self.body.get("prompt")
        return value if isinstance(value, str) else None

    @property
    def fault_kind(self) -> str | None:
        return None if self.fault is None else str(self.fault.get("kind"))

    @property
    def inference_time(self) -> float | None:
        if self.started_at is None or self.completed_at is None:
            return None
        return round(self.completed_at - self.started_at, 3)

    def log(self, message: str, level: str = "INFO") -> None:
        stamp = fal_time(time.time())
        self.logs.append({"message": message, "level": level, "source": "USER", "timestamp": stamp})

    def complete(
        self, *, result: dict[str, Any] | None = None, error: JobError | None = None
    ) -> None:
        self.state = COMPLETED
        self.completed_at = time.time()
        self.result, self.error = result, error

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Job:
        error = data.pop("error", None)
        job = cls(**data)
        job.error = JobError(**error) if error else None
        return job


class JobStore:
    """The journal of jobs under ``root/jobs``."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "jobs"
        self.dir.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def snapshot(job: Job) -> str:
        """What :meth:`write` journals of ``job`` as it is now."""
        return json.dumps(job.as_json())

    def write(self, job_id: str, snapshot: str) -> None:
        # not fsynced: the emulator's journal outlives a restart, not a power cut
        atomic.write_text(self.dir / f"{job_id}.json", snapshot, durable=False)

    def load(self) -> Iterator[Job]:
        """Every journaled job; unreadable leftovers are skipped (a write is atomic, so
        only a temporary file can be partial)."""
        for path in self.dir.glob("*.json"):
            try:
                yield Job.from_json(json.loads(path.read_text()))
            except (OSError, ValueError, TypeError):
                continue
