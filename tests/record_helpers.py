"""Result records as a run leaves them in the store, built in one place: a test or a
benchmark names the fields it cares about and takes plain values for the rest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runner.compile.check import check_pipeline
from runner.compile.steps import Step
from runner.store import ResultRecord, Store, StoredFile


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


def cache_every_node(
    pipeline: Path, root: Path, content: bytes = b"stand-in", **fields: Any
) -> None:
    """A result in the store at ``root`` for every node of ``pipeline`` (local backend), all
    with one stand-in output holding ``content``; ``fields`` set any other field."""
    compiled = check_pipeline(pipeline, backend="local").require()
    with Store.open(root) as opened:
        output = opened.tmp_dir() / "out.mp4"
        output.write_bytes(b"\x00\x00\x00\x18ftypmp42 " + content)
        stored = opened.put_file(output, move=True)
        for name, step in compiled.steps.items():
            opened.put_result(step_record(name, step, stored, **({"cost_usd": 0.0} | fields)))
