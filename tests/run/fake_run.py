"""Running the executor against the fake fal of tests/fake_fal.py: a project, its steps, a run
that collects its events."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.compile.check import check_pipeline
from runner.compile.steps import Step
from runner.run.events import Event, NodeEvent
from runner.run.executor import Executor
from runner.run.outcome import RunOptions, RunResult
from runner.store import Owner, Store
from tests.fake_fal import FakeFal
from tests.run_helpers import make_project


@dataclass
class Collect:
    """A reporter that keeps every event."""

    events: list[Event] = field(default_factory=list)

    def handle(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def nodes(self, kind: type[NodeEvent]) -> set[str]:
        return {e.node for e in self.of(kind)}


def steps_of(root: Path, text: str | None = None, **project: Any) -> tuple[Path, dict[str, Step]]:
    """The tiny pipeline (or ``text``) in a project at ``root``, compiled for fal."""
    pipeline = make_project(root, **project) if text is None else make_project(root, text=text)
    return pipeline, dict(check_pipeline(pipeline, backend="fal").require().steps)


def executor(
    steps: Mapping[str, Step],
    store: Store,
    fal: FakeFal,
    reporter: Collect,
    *,
    outputs: Mapping[str, Path] | None = None,
    owner: Owner | None = None,
    **options: Any,
) -> Executor:
    """An executor of ``steps`` on the fake; ``owner`` plays another process or host."""
    run_options = RunOptions(backend="fal", **options)
    return Executor(steps, store, lambda: fal, reporter, run_options, outputs=outputs, owner=owner)


def run(
    steps: Mapping[str, Step],
    store: Store,
    fal: FakeFal,
    *,
    outputs: Mapping[str, Path] | None = None,
    owner: Owner | None = None,
    **options: Any,
) -> tuple[RunResult, Collect]:
    """One run to its end; its result and events."""
    events = Collect()
    ran = executor(steps, store, fal, events, outputs=outputs, owner=owner, **options)
    result = asyncio.run(ran.run())
    return result, events
