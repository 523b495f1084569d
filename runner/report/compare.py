"""The report's comparison with another lock (``--against``): only the shots whose cache key
changed, the old and the new side by side, the prompt's words removed and added, the fields
that changed, the cost delta. The comparison itself is :mod:`runner.review.lockdiff`'s; the
new side is the pipeline as it is now (rendered or only planned)."""

from __future__ import annotations

from dataclasses import dataclass, field

from runner.lock import Lock
from runner.report.shots import Output, Shot
from runner.review.lockdiff import LockDiff, Side, diff_sides, prompt_diff


@dataclass
class Compared:
    """One shot that differs from the other lock."""

    node: str
    change: str  # "added" | "removed" | "changed"
    fields: list[str]
    prompt_runs: list[tuple[str, str]]
    old: Side | None
    new: Side | None
    cost_delta: float
    old_output: Output | None = None
    new_output: Output | None = None
    old_seed: object = None
    new_seed: object = None


@dataclass
class Comparison:
    """What ``--against`` shows: the label of the other lock and every shot that differs."""

    against: str
    shots: list[Compared] = field(default_factory=list)
    unchanged: int = 0
    cost_delta: float = 0.0

    def outputs(self) -> list[Output]:
        return [o for c in self.shots for o in (c.old_output, c.new_output) if o is not None]

    def place(self, placed: dict[str, Output]) -> None:
        """Point each side at the report's copy of its media (see report.media)."""
        for c in self.shots:
            if c.old_output is not None:
                c.old_output = placed.get(c.old_output.sha256, c.old_output)
            if c.new_output is not None:
                c.new_output = placed.get(c.new_output.sha256, c.new_output)


def compare(shots: list[Shot], lock: Lock, against: str) -> Comparison:
    """How the pipeline now (``shots``: each node and take) differs from ``lock``."""
    every = {s.name: s for shot in shots for s in (shot, *shot.takes)}
    old = {name: Side.of_entry(entry) for name, entry in lock.nodes.items()}
    new = {name: _side(shot) for name, shot in every.items()}
    diff: LockDiff = diff_sides(old, new)
    found = []
    for shot in diff.shots:
        before, after = shot.old, shot.new
        current = every.get(shot.node)
        locked = lock.nodes.get(shot.node)
        found.append(
            Compared(
                node=shot.node,
                change=shot.change,
                fields=shot.fields,
                prompt_runs=prompt_diff(
                    before.prompt if before else "", after.prompt if after else ""
                ),
                old=before,
                new=after,
                cost_delta=shot.cost_delta,
                old_output=Output(
                    locked.output.sha256, locked.output.content_type, locked.output.size
                )
                if locked is not None
                else None,
                new_output=current.output if current is not None else None,
                old_seed=locked.seed if locked is not None else None,
                new_seed=current.step.seed if current is not None else None,
            )
        )
    return Comparison(against, found, diff.unchanged, diff.cost_delta)


def _side(shot: Shot) -> Side:
    step = shot.step
    return Side(
        key=step.key,
        kind=step.kind,
        endpoint=step.endpoint.id if step.endpoint else None,
        request=step.body,
        media=tuple(slot.pointer for slot in step.slots),
        cost_usd=step.usd if step.endpoint else None,
        output=shot.output.sha256 if shot.output else None,
    )
