"""What the executor tells the world: one event type per thing that happens to a node.

The executor never prints; reporters (terminal, plain lines, the JSON-lines run log) turn
these into output. Every event carries the node name and ``at`` (``time.monotonic()``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, kw_only=True)
class Event:
    at: float = field(default_factory=time.monotonic)

    @property
    def kind(self) -> str:
        return type(self).__name__

    def as_json(self) -> dict[str, Any]:
        return {"event": self.kind, **asdict(self)}


@dataclass(frozen=True, kw_only=True)
class RunStarted(Event):
    pipeline: str
    backend: str
    nodes: int
    to_render: int
    estimated_usd: float
    run_id: str


@dataclass(frozen=True, kw_only=True)
class NodeEvent(Event):
    node: str


@dataclass(frozen=True, kw_only=True)
class NodeCached(NodeEvent):
    """The result was in the store: nothing was sent."""


@dataclass(frozen=True, kw_only=True)
class NodeStarted(NodeEvent):
    """Work began: a media step started, or a generation is about to be submitted."""

    what: str


@dataclass(frozen=True, kw_only=True)
class NodeSubmitted(NodeEvent):
    request_id: str
    endpoint: str
    reattached: bool = False


@dataclass(frozen=True, kw_only=True)
class NodeQueued(NodeEvent):
    position: int | None


@dataclass(frozen=True, kw_only=True)
class NodeRunning(NodeEvent):
    log: str | None = None


@dataclass(frozen=True, kw_only=True)
class NodeDownloading(NodeEvent):
    pass


@dataclass(frozen=True, kw_only=True)
class NodeDone(NodeEvent):
    sha256: str
    size: int
    cost_usd: float | None
    seconds: float


@dataclass(frozen=True, kw_only=True)
class NodeFailed(NodeEvent):
    error: str
    hint: str | None = None


@dataclass(frozen=True, kw_only=True)
class NodeSkipped(NodeEvent):
    """Not run because a node it depends on failed (or the run was interrupted)."""

    reason: str


@dataclass(frozen=True, kw_only=True)
class Notice(Event):
    """Something a user should know that is not about one node's state."""

    message: str
    node: str | None = None


@dataclass(frozen=True, kw_only=True)
class OutputWritten(NodeEvent):
    path: str


@dataclass(frozen=True, kw_only=True)
class RunFinished(Event):
    done: int
    cached: int
    failed: int
    skipped: int
    spent_usd: float
    seconds: float
    interrupted: bool = False
    failures: Mapping[str, str] = field(default_factory=dict)


class Reporter(Protocol):
    """Anything that receives events."""

    def handle(self, event: Event) -> None: ...


class Fanout:
    """Sends each event to several reporters."""

    def __init__(self, *reporters: Reporter) -> None:
        self.reporters = list(reporters)

    def handle(self, event: Event) -> None:
        for reporter in self.reporters:
            reporter.handle(event)
