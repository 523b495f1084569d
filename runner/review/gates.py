"""Approval gates: a gated node's dependents wait until its current output is approved.

"Current output" is named by content hash: the store's result for the node's cache key, or,
when this store does not have it, the lockfile's entry with that very key (a fresh clone).
A verdict in the review file holds only for the output it names, so it is void the moment
the node renders something else. A gated node with takes also waits for a take to be picked
(a director who gates a shot chooses the take before approving it).

A gate changes no cache key: it decides what runs now, not what a render is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from runner.compile.steps import Step
from runner.lock import Lock
from runner.pipeline.review_file import Review
from runner.store import Store

# The current output of a node (its sha256), or None when it is not rendered yet.
OutputOf = Callable[[str], str | None]


@dataclass(frozen=True)
class Wait:
    """Why a node does not render now: ``gate`` holds it, for ``why``."""

    gate: str
    why: str

    def describe(self) -> str:
        return f"waiting for approval of {self.gate} ({self.why})"


class Gates:
    """The approval gates of a compiled pipeline, with the review file's picks and verdicts."""

    def __init__(self, steps: Mapping[str, Step], review: Review) -> None:
        self.steps = steps
        self.review = review
        self.names = frozenset(name for name, step in steps.items() if step.gate)

    def holds(self, node: str, output: str | None) -> Wait | None:
        """Why the dependents of ``node`` must wait, its current output being ``output``
        (None: not rendered yet); None when they may go (or ``node`` is no gate)."""
        if node not in self.names:
            return None
        if self.steps[node].takes and node not in self.review.picks:
            return Wait(node, "no take picked yet")
        verdict = self.review.verdicts.get(node)
        if verdict is None:
            return Wait(node, "not approved yet" if output else "renders first")
        if verdict.sha256 != output:
            if not verdict.approved:
                return Wait(node, "not approved yet")
            return Wait(node, "its approval is void: the output changed")
        if not verdict.approved:
            return Wait(node, "rejected" + (f": {verdict.note}" if verdict.note else ""))
        return None

    def waiting(self, output_of: OutputOf) -> dict[str, Wait]:
        """Every node that waits, and for which gate: the dependents, direct or not, of each
        gate that holds (steps are in run order, so a node's inputs come first)."""
        held = {name: self.holds(name, output_of(name)) for name in self.names}
        waits: dict[str, Wait] = {}
        for name, step in self.steps.items():
            for dep in step.deps:
                found = waits.get(dep) or held.get(dep)
                if found is not None:
                    waits[name] = found
                    break
        return waits


def output_finder(
    steps: Mapping[str, Step], store: Store | None, lock: Lock | None, backend: str
) -> OutputOf:
    """The current output of a node: the store's result for its key, else the lockfile's
    entry rendered from that very key."""

    def output_of(name: str) -> str | None:
        step = steps.get(name)
        if step is None:
            return None
        if store is not None:
            record = store.result_for(step.key, backend)
            if record is not None:
                return record.output.sha256
        entry = lock.nodes.get(name) if lock is not None else None
        return entry.output.sha256 if entry is not None and entry.key == step.key else None

    return output_of
