"""Result records as a run leaves them in the store, built in one place: a test or a
benchmark names the fields it cares about and takes plain values for the rest."""

from __future__ import annotations

from typing import Any

from runner.compile.steps import Step
from runner.store import ResultRecord, StoredFile


def record(key: str, output: StoredFile, **fields: Any) -> ResultRecord:
    """A local text-to-video result under ``key``, recorded now; ``fields`` set any other
    field."""
    values: dict[str, Any] = {
        "node": "n",
        "kind": "t2v",
        "endpoint": "fal-ai/ltx-video",
        "backend": "local",
        "request_id": "r",
        "seed": 1,
        "content_type": "video/mp4",
        "cost_usd": 0.04,
        "result_url": None,
    }
    return ResultRecord(key=key, output=output, **(values | fields))


def step_record(name: str, step: Step, output: StoredFile, **fields: Any) -> ResultRecord:
    """The result a run of compiled ``step`` (node ``name``) records: its key, kind,
    endpoint and seed; ``fields`` set any other field."""
    values: dict[str, Any] = {
        "node": name,
        "kind": step.kind,
        "endpoint": step.endpoint.id if step.endpoint else None,
        "request_id": f"req-{name}",
        "seed": step.seed,
    }
    return record(step.key, output, **(values | fields))
