"""The template budget's clock: CPU time, so the same template passes or fails whatever the
machine's load (a render waiting for a core must not fail validation)."""

from __future__ import annotations

import time

import pytest

from runner.pipeline.template_budget import Budget, BudgetExceeded


def _burn(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_a_template_that_spends_its_cpu_time_is_stopped() -> None:
    budget = Budget(seconds=0.05)
    with pytest.raises(BudgetExceeded, match="CPU time") as stopped:
        for _ in range(1_000):  # 0.2 s of CPU if nothing stops it, well under the step bound
            _burn(0.0002)
            budget.step()
    assert "simplify" in stopped.value.hint


def test_time_the_thread_spends_waiting_is_not_charged() -> None:
    budget = Budget(seconds=0.05)
    for _ in range(200):  # 0.2 s of wall time spent off the CPU, as on a loaded machine
        time.sleep(0.001)
        budget.step()
