"""Spending of one run, checked before each submission."""

from __future__ import annotations

from collections.abc import Mapping

from runner.compile.steps import Step
from runner.errors import BudgetRefused, ShotgraphError
from runner.store import TieredStore


class Budget:
    """What a run has committed to spend, against an optional limit."""

    def __init__(self, limit: float | None) -> None:
        self.limit = limit
        self.committed = 0.0

    def reserve(self, step: Step) -> float:
        """Commit the step's estimate, or fail the step if it would pass the limit."""
        cost = step.usd
        if self.limit is not None and self.committed + cost > self.limit + 1e-9:
            raise BudgetRefused(
                f"submitting would take the run to ${self.committed + cost:.2f}, over the "
                f"budget of ${self.limit:.2f}",
                hint="raise --budget, or run again later to render what is left",
            )
        self.committed += cost
        return cost

    def refund(self, cost: float) -> None:
        """Give back a reservation whose submission failed (nothing was queued)."""
        self.committed -= cost


async def estimate(store: TieredStore, jobs: Mapping[str, Step]) -> tuple[float, set[str]]:
    """What ``jobs`` (by key) will cost, priced as the plan prices them: leaving out the
    ones an earlier run submitted (fal has them, paid once: this run re-attaches); and
    those keys."""

    async def submitted(key: str) -> bool:
        try:
            entry = await store.journal(key)
        except ShotgraphError:  # the run itself says what is wrong with the store
            return False
        return entry is not None and entry.state == "submitted"

    keys = list(jobs)
    paid = {key for key, yes in zip(keys, await store.each(keys, submitted), strict=True) if yes}
    return sum(step.usd for key, step in jobs.items() if key not in paid), paid
