"""Reporters: the live terminal view, plain lines and the run log, fed a run's events."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from runner.run.events import (
    Event,
    NodeCached,
    NodeDone,
    NodeFailed,
    NodeQueued,
    NodeRunning,
    NodeSkipped,
    NodeSubmitted,
    Notice,
    OutputWritten,
    RunFinished,
    RunStarted,
)
from runner.run.outcome import RunResult
from runner.ui.reporters import LiveReporter, PlainReporter, RunLog
from runner.ui.summary import print_summary

EVENTS: list[Event] = [
    RunStarted(pipeline="p", backend="local", nodes=4, to_render=3, estimated_usd=0.12, run_id="r"),
    NodeCached(node="street"),
    NodeSubmitted(node="intro", request_id="req-1", endpoint="fal-ai/x"),
    NodeQueued(node="intro", position=2),
    NodeQueued(node="intro", position=2),
    NodeQueued(node="intro", position=1),
    NodeRunning(node="intro", log="step 1"),
    NodeRunning(node="intro", log="step 2"),
    NodeDone(node="intro", sha256="a" * 64, size=2_500_000, cost_usd=0.04, seconds=3.2),
    OutputWritten(node="intro", path="renders/intro.mp4"),
    Notice(node="more", message="a previous run stopped while submitting this job"),
    NodeFailed(node="more", error="fal job failed: out of memory", hint="try fewer frames"),
    NodeSkipped(node="cut", reason="an input node failed"),
    RunFinished(
        done=1,
        cached=1,
        failed=1,
        skipped=1,
        spent_usd=0.04,
        seconds=3.5,
        failures={"more": "fal job failed"},
    ),
]


def test_plain_lines_say_each_change_once() -> None:
    out = io.StringIO()
    reporter = PlainReporter(out)
    for event in EVENTS:
        reporter.handle(event)
    lines = [line.split("] ", 1)[1] for line in out.getvalue().splitlines() if "] " in line]
    assert lines == [
        "run p (local): 4 nodes, 3 to render, estimated ~$0.12",
        "intro: submitted request req-1 (fal-ai/x)",
        "intro: queued, position 2",
        "intro: queued, position 1",
        "intro: running",
        "intro: done: 2.5 MB in 3.2 s (~$0.04)",
        "intro: wrote renders/intro.mp4",
        "more: note: a previous run stopped while submitting this job",
        "more: FAILED: fal job failed: out of memory",
        "cut: skipped: an input node failed",
    ]


def test_live_view_on_a_terminal() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, color_system=None)
    reporter = LiveReporter(console)
    for event in EVENTS:
        reporter.handle(event)
    text = out.getvalue()
    assert "intro: done: 2.5 MB" in text and "more: FAILED" in text
    assert reporter.totals == {"done": 1, "cached": 1, "failed": 1, "skipped": 1, "waiting": 0}
    assert not reporter.state  # nothing left in flight


def test_run_log_has_every_event_with_its_time(tmp_path: Path) -> None:
    log = RunLog(tmp_path / "logs" / "run.jsonl")
    for event in EVENTS:
        log.handle(event)
    entries = [
        json.loads(line) for line in (tmp_path / "logs" / "run.jsonl").read_text().splitlines()
    ]
    assert [e["event"] for e in entries] == [type(e).__name__ for e in EVENTS]
    assert all(isinstance(e["t"], float) for e in entries)


def test_a_closed_pipe_does_not_stop_a_run() -> None:
    class Closed(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError

    reporter = PlainReporter(Closed())
    for event in EVENTS:  # `shotgraph run | head`: the jobs go on, quietly
        reporter.handle(event)
    assert reporter.stream is None


def test_the_summary_bills_only_what_this_run_submitted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = RunResult(
        rendered={"a", "b", "c", "d"},
        cached={"e"},
        submitted={"a", "b"},
        reattached={"c"},
        received={"d"},
        spent_usd=0.08,
        reattached_usd=0.04,
        in_flight=[],
    )
    print_summary(result, {}, ["lockfile p.lock.json"], backend="local")
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        "4 rendered, 1 cached, 0 failed, 0 skipped · would cost ~$0.08 on fal "
        "(the local backend is free)"
    )
    assert out[1] == (
        "  of those rendered: 2 submitted by this run, 1 re-attached (sent and paid for by an "
        "earlier run, ~$0.04), 1 rendered by another run sharing the store; the cost above is "
        "this run's"
    )
    assert out[2] == "  lockfile p.lock.json"
    print_summary(RunResult(rendered={"a"}, submitted={"a"}, spent_usd=0.04), {}, [], backend="fal")
    assert capsys.readouterr().out == "1 rendered, 0 cached, 0 failed, 0 skipped · spent ~$0.04\n"
