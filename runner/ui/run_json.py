"""``run --json``: what a run did, as one JSON document a CI script can read.

Per node: its outcome, what this run paid for it, fal's request id, the output (hash, size
and where it was written) and, for a failure, fal's message and the hint. Then the totals,
the lockfile, the exit code and its name (the table is :class:`runner.errors.ExitCode`).

Outcomes: ``cached`` (in the store, nothing sent), ``submitted`` (a job this run sent and
paid for), ``reattached`` (a job an earlier run sent and paid for, collected now),
``received`` (another run sharing the store rendered it), ``made`` (a local frame or
stitch), ``shared`` (the very same request as another node: one job), ``failed``,
``skipped`` (an input failed, or the run stopped first), ``cancelled`` (queued at fal when a
signal came: cancelled before it ran, nothing paid) and ``running`` (still running at fal
when the run stopped: journaled, the next run collects it without paying again).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runner.compile.steps import Step
from runner.errors import ExitCode, ShotgraphError
from runner.run.outcome import RunResult

JSON_VERSION = 1


def outcome_of(name: str, step: Step, result: RunResult) -> str:
    """How the node came out of the run (see the module's list)."""
    if name in result.failed:
        return "failed"
    if name in result.cached:
        return "cached"
    for outcome, names in (
        ("submitted", result.submitted),
        ("reattached", result.reattached),
        ("received", result.received),
    ):
        if name in names:
            return outcome
    if name in result.rendered:
        return "made" if step.endpoint is None else "shared"
    if name in result.cancelled:
        return "cancelled"
    if name in result.in_flight:
        return "running"
    return "skipped"


def run_document(
    result: RunResult,
    steps: Mapping[str, Step],
    outputs: Mapping[str, Path],
    *,
    pipeline: str,
    backend: str,
    lockfile: Path | None,
    lock_written: bool | None,
) -> dict[str, Any]:
    """The JSON summary of a run that happened."""
    nodes: dict[str, Any] = {}
    for name, step in steps.items():
        outcome = outcome_of(name, step, result)
        record = result.records.get(name)
        node: dict[str, Any] = {
            "kind": step.kind,
            "endpoint": step.endpoint.id if step.endpoint else None,
            "outcome": outcome,
            "key": step.key,
            "paid_usd": round(record.cost_usd or 0.0, 6)
            if record is not None and outcome == "submitted"
            else 0.0,
            "estimated_usd": step.estimate.usd if step.estimate else None,
        }
        if record is not None:
            node["request_id"] = record.request_id
            node["output"] = {
                "sha256": record.output.sha256,
                "size": record.output.size,
                "path": str(outputs[name]) if name in outputs else None,
            }
        failure = result.failed.get(name)
        if failure is not None:
            node["error"] = {"message": failure.message, "hint": failure.hint}
        nodes[name] = node
    code = result.exit_code
    return {
        "shotgraph_run": JSON_VERSION,
        "pipeline": pipeline,
        "backend": backend,
        "exit_code": int(code),
        "status": "stopped" if result.stopped is not None else _status(code),
        "interrupted_by": _signal_name(result.signal) if result.interrupted else None,
        "stopped": result.stopped.message if result.stopped is not None else None,
        "totals": {
            "nodes": len(steps),
            "rendered": len(result.rendered),
            "cached": len(result.cached),
            "failed": len(result.failed),
            "skipped": len(result.skipped - set(result.cancelled) - set(result.in_flight)),
            "cancelled": len(result.cancelled),
            "running": len(result.in_flight),
            "submitted": len(result.submitted),
            "reattached": len(result.reattached),
            "received": len(result.received),
            "spent_usd": round(result.spent_usd, 6),
            "reattached_usd": round(result.reattached_usd, 6),
        },
        "lockfile": None
        if lockfile is None
        else {"path": str(lockfile), "written": bool(lock_written)},
        "notes": list(result.notes),
        "nodes": nodes,
    }


def error_document(error: ShotgraphError, *, pipeline: str | None) -> dict[str, Any]:
    """The JSON summary of a run that did not start (a bad pipeline, --frozen, --budget)."""
    from runner.errors import PipelineInvalid

    code = error.exit_code
    document: dict[str, Any] = {
        "shotgraph_run": JSON_VERSION,
        "pipeline": pipeline,
        "exit_code": int(code),
        "status": _status(code),
        "error": {"message": error.message, "hint": error.hint},
        "nodes": {},
    }
    if isinstance(error, PipelineInvalid):
        document["errors"] = [d.as_json() for d in error.diagnostics if d.severity == "error"]
    return document


_STATUS = {
    ExitCode.OK: "ok",
    ExitCode.USER: "invalid",
    ExitCode.RENDER_FAILED: "failed",
    ExitCode.OVER_BUDGET: "over_budget",
    ExitCode.INTERRUPTED: "interrupted",
    ExitCode.TERMINATED: "interrupted",
}


def _status(code: int) -> str:
    try:
        return _STATUS[ExitCode(code)]
    except (ValueError, KeyError):
        return "error"


def _signal_name(signum: int | None) -> str:
    import signal

    if signum is None:
        return "SIGINT"
    return signal.Signals(signum).name
