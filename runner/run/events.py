"""What the executor tells the world: one event type per thing that happens to a node.

The executor never prints; reporters (terminal, plain lines, the JSON-lines run log) turn
these into output. Every event carries the node name and ``at`` (``time.monotonic()``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Protocol


@dataclass(frozen=True, kw_only=True)
class Event:
    at: float = field(default_factory=time.monotonic)

    @property
    def kind(self) -> str:
        return type(self).__name__

    def as_json(self) -> dict[str, Any]:
        # Shallow: events hold plain values and at most a mapping of them (asdict's deep
        # copy was most of the cost of logging 5,000 cached nodes).
        data: dict[str, Any] = {"event": self.kind}
        for name in _field_names(type(self)):
            value = getattr(self, name)
            data[name] = dict(value) if isinstance(value, Mapping) else value
        return data


_FIELDS: dict[type, tuple[str, ...]] = {}


def _field_names(kind: type[Event]) -> tuple[str, ...]:
    names = _FIELDS.get(kind)
    if names is None:
        names = _FIELDS[kind] = tuple(f.name for f in fields(kind))
    return names


@dataclass(frozen=True, kw_only=True)
class RunStarted(Event):
    pipeline: str
    backend: str
    nodes: int
    to_render: int
    estimated_usd: float  # what this run will pay: re-attached jobs were paid for earlier
    run_id: str
    to_attach: int = 0  # of to_render, jobs an earlier run submitted (collected, not paid)


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
class NodeWaiting(NodeEvent):
    """Not run now: an approval gate upstream holds it (no failure; see runner.review)."""

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
    """The run's totals. ``done`` nodes got a result now: ``submitted`` of them as jobs this
    run paid for (``spent_usd``), ``reattached`` ones as jobs an earlier run submitted and
    paid for (``reattached_usd``), ``received`` ones from another run sharing the store,
    the rest made locally (frame, stitch). ``stopped`` says why the run stopped early."""

    done: int
    cached: int
    failed: int
    skipped: int
    spent_usd: float
    seconds: float
    interrupted: bool = False
    failures: Mapping[str, str] = field(default_factory=dict)
    submitted: int = 0
    reattached: int = 0
    received: int = 0
    reattached_usd: float = 0.0
    stopped: str | None = None
    waiting: int = 0  # nodes held behind approval gates


class Reporter(Protocol):
    """Anything that receives events."""

    def handle(self, event: Event) -> None: ...


class Fanout:
    """Sends each event to several reporters, and keeps any of them from killing the run.

    A reporter that raises (the run log on a full disk, a terminal that went away) is
    dropped from then on; ``notes`` says which and why, and the reporters still working
    are told with a :class:`Notice`. Reporting is never worth abandoning paid jobs for.
    """

    def __init__(self, *reporters: Reporter) -> None:
        self.reporters = list(reporters)
        self.notes: list[str] = []

    def handle(self, event: Event) -> None:
        failed: list[tuple[Reporter, Exception]] = []
        for reporter in self.reporters:
            try:
                reporter.handle(event)
            except Exception as problem:  # any failure of a reporter: see the docstring
                failed.append((reporter, problem))
        for reporter, error in failed:
            self.reporters.remove(reporter)
            close = getattr(reporter, "close", None)
            if callable(close):  # a live display stops redrawing, a file is let go
                with contextlib.suppress(Exception):
                    close()
            note = f"{_name(reporter)} stopped ({_reason(error)}); the run went on without it"
            self.notes.append(note)
            self.handle(Notice(message=note))


def _name(reporter: Reporter) -> str:
    describe = getattr(reporter, "describe", None)
    return str(describe()) if callable(describe) else type(reporter).__name__


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror + (f": {exc.filename}" if exc.filename else "")
    return f"{type(exc).__name__}: {exc}"
