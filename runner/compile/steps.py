"""Compiled nodes ("steps"): what exactly will be sent or done, priced and keyed.

A generation step carries the complete request body for its fal endpoint. Media inputs in the
body are placeholders until run time: ``sha256:<hex>`` for a project file, ``node:<name>`` for
another node's output (a URL is kept as written). ``slots`` says where each one is, and
:func:`fill_slots` is the one way to put something else there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runner.compile.sources import MediaSource
from runner.frame_at import FrameAt
from runner.ltx.clip import Timing
from runner.ltx.pricing import Estimate
from runner.ltx.registry import Endpoint
from runner.pipeline.graph import Graph
from runner.pipeline.presets import Setting
from runner.pipeline.records import MediaType, Pipeline, output_type

JsonPath = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Slot:
    """A media input of a step and where it goes in the request body."""

    pointer: JsonPath
    source: MediaSource


@dataclass(frozen=True)
class Step:
    """One node, compiled."""

    name: str
    kind: str
    deps: tuple[str, ...]
    key: str
    slots: tuple[Slot, ...] = ()
    endpoint: Endpoint | None = None
    body: Mapping[str, Any] | None = None
    seed: int | None = None
    seed_pinned_by: str = ""  # "node" when the pipeline sets it, else "derived"
    character: str | None = None
    estimate: Estimate | None = None
    timing: Timing | None = None
    at: FrameAt | None = None
    settings: Mapping[str, Setting] = field(default_factory=dict)
    # Review (none of it is in the key): an approval gate; a take step's number and node
    # (``take_of``); on a node with takes, the picked ``take`` of its ``takes``.
    gate: bool = False
    take: int | None = None
    takes: int = 0
    take_of: str | None = None

    @property
    def node(self) -> str:
        """The pipeline node this step renders (a take's node, for a take)."""
        return self.take_of or self.name

    @property
    def output_type(self) -> MediaType:
        return output_type(self.kind)

    @property
    def usd(self) -> float:
        """The estimated price of running it: 0 for local steps and unpriced endpoints."""
        return self.estimate.usd or 0.0 if self.estimate else 0.0


def fill_slots(body: Mapping[str, Any], values: Mapping[JsonPath, Any]) -> dict[str, Any]:
    """A copy of ``body`` with the value at each pointer of ``values`` replaced: how the key
    (upstream outputs as their keys), the upload (URLs), the lockfile (content hashes) and the
    plan (slots blanked to compare the rest) each see a body's media slots. The containers on
    the way are copied, so ``body`` is never changed. A pointer that is not in the body raises
    KeyError, IndexError or TypeError."""
    filled: dict[str, Any] = dict(body)
    for pointer, value in values.items():
        target: Any = filled
        for part in pointer[:-1]:
            child = target[part]
            target[part] = child = list(child) if isinstance(child, list) else dict(child)
            target = child
        target[pointer[-1]] = value
    return filled


@dataclass(frozen=True)
class Compiled:
    """A compiled pipeline: its graph and its steps in run order (made by
    ``runner.compile.compiler``; here, so that reading one back from the compile memo does
    not load the compiler)."""

    pipeline: Pipeline
    graph: Graph
    steps: Mapping[str, Step]
    backend: str
