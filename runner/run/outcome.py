"""What a run is asked to do (RunOptions) and what came of it (RunResult, RunFinished)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from runner.errors import ExitCode, ShotgraphError, StepFailed, signal_exit
from runner.run.events import RunFinished
from runner.store import ResultRecord


@dataclass(frozen=True)
class RunOptions:
    """How a run behaves."""

    backend: str = "fal"
    jobs: int = 4
    budget: float | None = None
    media_workers: int = max(1, min(4, os.cpu_count() or 1))


@dataclass
class RunResult:
    """What happened to every node.

    Of the ``rendered`` nodes, ``submitted`` ones are jobs this run sent and paid for
    (``spent_usd``); ``reattached`` ones are jobs an earlier run sent and paid for
    (``reattached_usd``), collected now; ``received`` ones another run sharing the store
    rendered while this one waited. ``waiting`` nodes are held behind an approval gate (node:
    why), which is no failure: a run that renders all the rest is ``ok``. ``stopped`` is
    why the run stopped early (a full disk); ``notes`` are things that went wrong beside
    the nodes (a run log that failed).
    """

    records: dict[str, ResultRecord] = field(default_factory=dict)
    rendered: set[str] = field(default_factory=set)
    cached: set[str] = field(default_factory=set)
    failed: dict[str, StepFailed] = field(default_factory=dict)
    skipped: set[str] = field(default_factory=set)
    spent_usd: float = 0.0
    interrupted: bool = False
    in_flight: list[str] = field(default_factory=list)  # jobs left running at an interrupt
    submitted: set[str] = field(default_factory=set)
    reattached: set[str] = field(default_factory=set)
    received: set[str] = field(default_factory=set)
    reattached_usd: float = 0.0
    stopped: ShotgraphError | None = None
    notes: list[str] = field(default_factory=list)
    waiting: dict[str, str] = field(default_factory=dict)
    cancelled: list[str] = field(default_factory=list)  # queued at fal, cancelled at a signal
    signal: int | None = None  # the signal that interrupted the run

    def book(self, name: str, how: str, record: ResultRecord) -> float:
        """Book a node's result by how it came; what this run paid for it (NodeDone's cost).

        Only a job this run submitted is this run's spending. A re-attached job was paid
        for by the earlier run that submitted it (killed before it could say so), and a
        result another run recorded, or a node sharing another node's job, cost nothing
        here: two runs sharing a store must not both report the same spending.
        """
        cost = record.cost_usd or 0.0
        if how == "submitted":
            self.submitted.add(name)
            self.spent_usd += cost
            return cost
        if how == "reattached":
            self.reattached.add(name)
            self.reattached_usd += cost
        elif how == "received":
            self.received.add(name)
        return 0.0

    @property
    def exit_code(self) -> int:
        """The run's exit status (errors.ExitCode): a signal, a full disk, a node refused
        for the budget, a node that failed, in that order."""
        if self.interrupted:
            return signal_exit(self.signal) if self.signal else ExitCode.INTERRUPTED
        if self.stopped is not None:
            return self.stopped.exit_code
        codes = {failure.exit_code for failure in self.failed.values()}
        if ExitCode.OVER_BUDGET in codes:
            return ExitCode.OVER_BUDGET
        if codes or self.skipped:
            return ExitCode.RENDER_FAILED
        return ExitCode.OK

    @property
    def ok(self) -> bool:
        return (
            not self.failed and not self.skipped and not self.interrupted and self.stopped is None
        )

    def __repr__(self) -> str:
        # Counts, not thousands of records: asyncio formats the main task's result on exit.
        return (
            f"RunResult(rendered={len(self.rendered)}, cached={len(self.cached)}, "
            f"failed={len(self.failed)}, skipped={len(self.skipped)}, "
            f"spent_usd={self.spent_usd}, interrupted={self.interrupted})"
        )


def finished(r: RunResult, seconds: float) -> RunFinished:
    """The RunFinished event of a run that ended with ``r``."""
    return RunFinished(
        done=len(r.rendered),
        cached=len(r.cached),
        failed=len(r.failed),
        skipped=len(r.skipped),
        spent_usd=round(r.spent_usd, 6),
        seconds=round(seconds, 3),
        interrupted=r.interrupted,
        failures={n: f.message for n, f in r.failed.items()},
        submitted=len(r.submitted),
        reattached=len(r.reattached),
        received=len(r.received),
        reattached_usd=round(r.reattached_usd, 6),
        stopped=r.stopped.message if r.stopped is not None else None,
        waiting=len(r.waiting),
    )


def as_failure(problem: ShotgraphError | OSError) -> StepFailed:
    """A node's failure from what stopped it (a full disk also stops the run: see _stop)."""
    if isinstance(problem, StepFailed):
        return problem
    if isinstance(problem, ShotgraphError):
        return StepFailed(problem.message, problem.hint)
    where = f" ({problem.filename})" if problem.filename else ""
    return StepFailed(
        f"{problem.strerror or problem}{where}",
        hint="check the disk space and permissions of the store and outputs",
    )
