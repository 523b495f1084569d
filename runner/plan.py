"""The plan: per node what it will cost, how long it is, and whether it will render and why."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from runner.compile.compiler import Compiled
from runner.compile.steps import Step

# What a store says about a step: ("cached" | "render", why).
StatusOf = Callable[[Step], tuple[str, str]]


@dataclass(frozen=True)
class PlanRow:
    """One node of the plan."""

    step: Step
    status: str  # "cached" | "render" | "attach" (already submitted: collected, not paid)
    reason: str  # "new", "request changed", "upstream changed", "cache entry missing", ...
    shared: bool = False  # the very same request as an earlier row: one job serves both

    @property
    def cost(self) -> float:
        """What this node adds to the run: nothing when cached or sharing another's job."""
        return self.step.usd if self.status == "render" and not self.shared else 0.0

    def as_json(self, *, verbose: bool = False) -> dict[str, Any]:
        step = self.step
        timing = step.timing
        estimate = step.estimate
        row: dict[str, Any] = {
            "node": step.name,
            "kind": step.kind,
            "endpoint": step.endpoint.id if step.endpoint else None,
            "status": self.status,
            "reason": self.reason,
            "frames": timing.num_frames if timing else None,
            "fps": timing.frame_rate if timing else None,
            "seconds": round(timing.seconds, 3) if timing and timing.seconds else None,
            "timing_assumed": bool(timing and timing.assumed),
            "estimated_usd": estimate.usd if estimate else (0.0 if not step.endpoint else None),
            "price_confirmed": estimate.confirmed if estimate else True,
            "seed": step.seed,
            "key": step.key,
            "deps": list(step.deps),
        }
        if verbose and step.body is not None:
            row["request"] = step.body
        return row


@dataclass(frozen=True)
class Plan:
    """Rows in run order and the total of what will render."""

    rows: tuple[PlanRow, ...]

    @property
    def total_usd(self) -> float:
        return round(sum(row.cost for row in self.rows), 6)

    @property
    def unpriced(self) -> list[str]:
        """Nodes that will render but whose price fal does not publish."""
        return [
            r.step.name
            for r in self.rows
            if r.status == "render" and r.step.estimate is not None and r.step.estimate.usd is None
        ]

    @property
    def unconfirmed(self) -> list[str]:
        return [
            r.step.name
            for r in self.rows
            if r.status == "render"
            and r.step.estimate is not None
            and not r.step.estimate.confirmed
        ]

    def counts(self) -> Mapping[str, int]:
        out = {"render": 0, "cached": 0, "attach": 0}
        for row in self.rows:
            out[row.status] = out.get(row.status, 0) + 1
        return out


def always_render(step: Step) -> tuple[str, str]:
    """The status of every step when no store is consulted."""
    return "render", "no cache consulted"


def make_plan(compiled: Compiled, status_of: StatusOf = always_render) -> Plan:
    rows: list[PlanRow] = []
    first_with_key: dict[str, str] = {}
    for step in compiled.steps.values():
        status, reason = status_of(step)
        first = first_with_key.setdefault(step.key, step.name)
        if first != step.name and status == "render":
            rows.append(PlanRow(step, status, f"same request as '{first}'", shared=True))
        else:
            rows.append(PlanRow(step, status, reason))
    return Plan(tuple(rows))
