"""Reporters: the executor's events as live progress on a terminal, plain lines elsewhere,
and a JSON-lines run log beside the store."""

from __future__ import annotations

import contextlib
import json
import sys
import time
import uuid
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from runner.errors import display_path
from runner.run.events import (
    Event,
    Fanout,
    NodeCached,
    NodeDone,
    NodeDownloading,
    NodeEvent,
    NodeFailed,
    NodeQueued,
    NodeRunning,
    NodeSkipped,
    NodeStarted,
    NodeSubmitted,
    NodeWaiting,
    Notice,
    OutputWritten,
    Reporter,
    RunFinished,
    RunStarted,
)
from runner.store import tree_size

if TYPE_CHECKING:
    from rich.console import Console, Group

LOGS = "logs"  # under the store
KEEP_LOGS = 20  # run logs gc keeps: the newest


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.0f} KB"


def _cost(usd: float | None) -> str:
    return "" if not usd else f" (~${usd:.2f})"


def describe(event: Event) -> str | None:
    """One line for an event, or None when it is not worth a line of its own."""
    if isinstance(event, RunStarted):
        attach = f" ({event.to_attach} already submitted)" if event.to_attach else ""
        return (
            f"run {event.pipeline} ({event.backend}): {event.nodes} nodes, "
            f"{event.to_render} to render{attach}, estimated ~${event.estimated_usd:.2f}"
        )
    if isinstance(event, NodeSubmitted):
        verb = "re-attached to" if event.reattached else "submitted"
        return f"{verb} request {event.request_id} ({event.endpoint})"
    if isinstance(event, NodeQueued):
        return "queued" + (f", position {event.position}" if event.position is not None else "")
    if isinstance(event, NodeStarted):
        return event.what
    if isinstance(event, NodeDone):
        return f"done: {_size(event.size)} in {event.seconds:.1f} s{_cost(event.cost_usd)}"
    if isinstance(event, NodeFailed):
        return f"FAILED: {event.error}" + (f"\n    hint: {event.hint}" if event.hint else "")
    if isinstance(event, NodeSkipped):
        return f"skipped: {event.reason}"
    if isinstance(event, NodeWaiting):
        return event.reason
    if isinstance(event, OutputWritten):
        return f"wrote {display_path(Path(event.path))}"
    if isinstance(event, Notice):
        return f"note: {event.message}"
    if isinstance(event, NodeRunning):
        return "running"
    if isinstance(event, NodeDownloading):
        return "downloading"
    return None


class PlainReporter:
    """A line per change, for logs and CI: ``[  3.2s] intro  done: 1.2 MB ...``."""

    def __init__(self, stream: IO[str], *, show_cached: bool = False) -> None:
        self.stream: IO[str] | None = stream
        self.show_cached = show_cached
        self.started = time.monotonic()
        self._last: dict[str, str] = {}

    def handle(self, event: Event) -> None:
        if isinstance(event, RunFinished):
            return
        if isinstance(event, NodeCached) and not self.show_cached:
            return
        line = describe(event) if not isinstance(event, NodeCached) else "cached"
        if line is None:
            return
        node = getattr(event, "node", None)
        if node is not None and isinstance(event, NodeQueued | NodeRunning):
            if self._last.get(node) == line:
                return  # the same state again (a log line, an unchanged position)
            self._last[node] = line
        prefix = f"[{event.at - self.started:6.1f}s] "
        self._write(prefix + (f"{node}: " if node else "") + line + "\n")

    def _write(self, text: str) -> None:
        if self.stream is None:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except BrokenPipeError:
            # `shotgraph run | head`: the reader has gone, but the jobs are paid for; keep
            # running and stay quiet (the run log still has every event).
            self.stream = None


class LiveReporter:
    """A live table on a terminal: every node in flight with its state, position and time,
    and the totals; finished nodes scroll above it."""

    def __init__(self, console: Console) -> None:
        from rich.live import Live

        self.console = console
        self.state: dict[str, tuple[str, float]] = {}
        self.totals = {"done": 0, "cached": 0, "failed": 0, "skipped": 0, "waiting": 0}
        self.total = 0
        self.cost = 0.0
        self.started = time.monotonic()
        # Rendered by Live's own refresh (elapsed times tick while nothing happens).
        self.live = Live(
            console=console, refresh_per_second=4, transient=True, get_renderable=self._render
        )

    def handle(self, event: Event) -> None:
        from rich.text import Text

        if isinstance(event, RunStarted):
            self.total = event.nodes
            self.console.print(describe(event))
            self.live.start()
        elif isinstance(event, RunFinished):
            self.close()
            return
        elif isinstance(event, NodeCached):
            self.totals["cached"] += 1
        elif isinstance(event, NodeEvent):
            self._node(event)
        elif isinstance(event, Notice):
            self.console.print(Text(f"note: {event.message}", style="yellow"))

    def close(self) -> None:
        """Stop the live display (at the end of the run, or when it failed)."""
        self.live.stop()

    def _node(self, event: NodeEvent) -> None:
        from rich.text import Text

        now = time.monotonic()
        line = describe(event) or ""
        if isinstance(event, NodeDone | NodeFailed | NodeSkipped | NodeWaiting):
            self.state.pop(event.node, None)
            kind = {
                NodeDone: "done",
                NodeFailed: "failed",
                NodeSkipped: "skipped",
                NodeWaiting: "waiting",
            }[type(event)]
            self.totals[kind] += 1
            if isinstance(event, NodeDone):
                self.cost += event.cost_usd or 0.0
            style = {"done": "green", "failed": "bold red", "skipped": "yellow"}.get(kind, "blue")
            self.console.print(Text(f"{event.node}: {line}", style=style))
        elif isinstance(event, OutputWritten):
            self.console.print(Text(f"{event.node}: {line}", style="cyan"))
        else:
            since = self.state.get(event.node, ("", now))[1]
            self.state[event.node] = (line, since)

    def _render(self) -> Group:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
        table.add_column("node")
        table.add_column("state")
        table.add_column("elapsed", justify="right")
        now = time.monotonic()
        in_flight = self.state.copy()  # the refresh thread reads while events arrive
        for node, (line, since) in list(in_flight.items())[:20]:
            table.add_row(node, line.split("\n")[0][:70], f"{now - since:5.1f}s")
        if len(in_flight) > 20:
            table.add_row(f"... {len(in_flight) - 20} more", "", "")
        t = self.totals
        finished = t["done"] + t["cached"] + t["failed"] + t["skipped"] + t["waiting"]
        footer = Text(
            f"{finished}/{self.total} nodes · {t['done']} rendered · {t['cached']} cached · "
            f"{t['failed']} failed · ~${self.cost:.2f} · {now - self.started:.0f}s",
            style="bold",
        )
        return Group(table, footer)


class RunLog:
    """The run log: every event as a JSON line (with its time since the start), appended to
    ``<store>/logs/<run>.jsonl``. Not part of the lockfile; handy for timings. The class owns
    that directory: where a run's log goes, how much the logs take, pruning old ones.

    It never stops a run: if it cannot be created or written (a full disk), ``handle``
    raises, and the :class:`~runner.run.events.Fanout` drops it and notes why."""

    @classmethod
    def for_run(cls, store_root: Path, pipeline: str) -> RunLog:
        # Unique per run: two runs may start within the same second.
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return cls(store_root / LOGS / f"{stamp}-{pipeline}-{uuid.uuid4().hex[:8]}.jsonl")

    @staticmethod
    def disk_bytes(store_root: Path) -> int:
        return tree_size(store_root / LOGS)

    @staticmethod
    def prune(store_root: Path, *, dry_run: bool = False) -> int:
        """Remove all but the newest KEEP_LOGS logs (they are for recent runs' timings)."""
        logs = store_root / LOGS
        if not logs.is_dir():
            return 0
        found = sorted(logs.glob("*.jsonl"), key=lambda p: p.stat().st_mtime)
        old = found[:-KEEP_LOGS] if len(found) > KEEP_LOGS else []
        if not dry_run:
            for path in old:
                path.unlink(missing_ok=True)
        return len(old)

    @staticmethod
    def last_events(store_root: Path, pipeline: str) -> list[dict[str, Any]]:
        """The events of the newest run of ``pipeline`` that left a log (lines that do not
        parse, from a run killed mid-write, are left out); [] when there is none."""
        logs = store_root / LOGS
        try:
            found = [p for p in logs.glob(f"*-{pipeline}-*.jsonl") if p.is_file()]
            newest = max(found, key=lambda p: p.stat().st_mtime_ns, default=None)
            lines = newest.read_text(encoding="utf-8").splitlines() if newest else []
        except OSError:
            return []
        events = []
        for line in lines:
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict):
                    events.append(event)
        return events

    def __init__(self, path: Path) -> None:
        self.path = path
        self.started = time.monotonic()
        self._file: IO[str] | None = None
        self._failure: OSError | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("a", encoding="utf-8", buffering=1)
        except OSError as exc:
            self._failure = exc

    def describe(self) -> str:
        return f"the run log {display_path(self.path)}"

    def handle(self, event: Event) -> None:
        if self._file is None:
            raise self._failure or OSError(f"{self.path} is closed")
        data: dict[str, Any] = event.as_json()
        data["t"] = round(event.at - self.started, 4)
        data.pop("at", None)
        self._file.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")
        if isinstance(event, RunFinished):
            self.close()

    def close(self) -> None:
        if self._file is not None and not self._file.closed:
            with contextlib.suppress(OSError):  # a last flush on a full disk
                self._file.close()


def close_screens(reporter: Fanout) -> None:
    """Take down live displays now (a process about to exit at once): the cursor comes
    back and the table is not left drawn."""
    for each in reporter.reporters:
        if isinstance(each, LiveReporter):
            with contextlib.suppress(Exception):
                each.close()


def reporters_for(
    store_root: Path, pipeline: str, *, plain: bool, to_stderr: bool = False
) -> tuple[Fanout, RunLog]:
    """What a run reports to: a live table on a terminal (plain lines elsewhere, or with
    ``plain``) and its run log; the log is returned too, for closing. ``to_stderr``: the
    progress goes to stderr (stdout carries JSON)."""
    log = RunLog.for_run(store_root, pipeline)
    stream = sys.stderr if to_stderr else sys.stdout
    screen: Reporter
    if not plain and stream.isatty():
        from rich.console import Console

        screen = LiveReporter(Console(stderr=to_stderr))
    else:
        screen = PlainReporter(stream)
    return Fanout(screen, log), log
