"""Holding nodes behind approval gates during a run.

A node whose input is a gated node's output that is not approved does not run: it, and what
depends on it, is ``waiting``, which is no failure. The check is made on the output the gate
actually has, so a gate rendered in this run holds its dependents unless that very output
was approved (the rule itself is :mod:`runner.review.gates`'s; the executor gets it as a
function, ``hold``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from runner.compile.steps import Step
from runner.run.outcome import RunResult
from runner.store import ResultRecord

# Why the dependents of a node must wait, given its current output's sha256 (None: it has
# none yet); None when they may go.
Hold = Callable[[str, str | None], str | None]


def never_hold(node: str, output: str | None) -> str | None:
    """The hold of a pipeline without gates."""
    return None


class Waiting(Exception):
    """A node's input is held behind an approval gate."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def held_before_run(
    step: Step, hold: Hold, result: RunResult, pending: list[str], *, cached: bool
) -> str | None:
    """Why ``step`` waits, as far as is known before the run: an input that waits, or a
    gate whose stored output is not approved. A stored result behind a gate that renders
    now waits too (that gate's new output cannot have been approved but by its bytes,
    which only the run will tell: a node to render checks then)."""
    for dep in step.deps:
        if dep in result.waiting:
            return result.waiting[dep]
        record = result.records.get(dep)
        if record is not None:
            reason = hold(dep, record.output.sha256)
            if reason is not None:
                return reason
        elif cached and dep in pending:
            reason = hold(dep, None)
            if reason is not None:
                return reason
    return None


def likely_waiting(steps: Mapping[str, Step], pending: list[str], hold: Hold) -> set[str]:
    """The pending nodes that will wait unless a gate rendered now makes exactly the output
    that was approved: what the run's header leaves out of what it will render and cost
    (as the plan does)."""
    found: set[str] = set()
    todo = set(pending)
    for name in pending:
        for dep in steps[name].deps:
            if dep in found or (dep in todo and hold(dep, None) is not None):
                found.add(name)
                break
    return found


def sort_before_run(
    steps: Mapping[str, Step], cached: Mapping[str, ResultRecord], hold: Hold, result: RunResult
) -> list[str]:
    """Put the ``cached`` results into ``result``, and there too what a gate holds before
    the run; the steps to run, in run order."""
    pending: list[str] = []
    for name, step in steps.items():
        record = cached.get(name)
        held = held_before_run(step, hold, result, pending, cached=record is not None)
        if held is not None:
            result.waiting[name] = held
        elif record is not None:
            result.records[name] = record
            result.cached.add(name)
        else:
            pending.append(name)
    return pending
