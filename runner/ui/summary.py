"""The summary a run ends with: counts and money, jobs left at fal, failures with their hints,
the outputs written, and notes from the command (the lockfile)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import click

from runner.errors import display_path
from runner.run.backends import LOCAL
from runner.run.outcome import RunResult


def print_summary(
    result: RunResult,
    outputs: Mapping[str, Path],
    extra: list[str],
    *,
    backend: str,
    to_stderr: bool = False,
) -> None:
    """Print the summary: on stdout (on stderr with ``to_stderr``, when stdout carries
    JSON), failures on stderr."""

    def say(text: str) -> None:
        click.echo(text, err=to_stderr)

    rendered, cached = len(result.rendered), len(result.cached)
    money = (
        f"would cost ~${result.spent_usd:.2f} on fal (the local backend is free)"
        if backend == LOCAL
        else f"spent ~${result.spent_usd:.2f}"
    )
    waiting = f", {len(result.waiting)} waiting for approval" if result.waiting else ""
    head = (
        f"{rendered} rendered, {cached} cached, {len(result.failed)} failed, "
        f"{len(result.skipped)} skipped{waiting} · {money}"
    )
    say(("interrupted: " if result.interrupted else "") + head)
    if result.reattached or result.received:
        # Only what this run submitted is its spending: a job re-attached after a crash was
        # paid for by the run that sent it, and another run sharing the store pays for its own.
        parts = [f"{len(result.submitted)} submitted by this run"]
        if result.reattached:
            parts.append(
                f"{len(result.reattached)} re-attached (sent and paid for by an earlier run, "
                f"~${result.reattached_usd:.2f})"
            )
        if result.received:
            parts.append(f"{len(result.received)} rendered by another run sharing the store")
        say(f"  of those rendered: {', '.join(parts)}; the cost above is this run's")
    if result.cancelled:
        say(f"  cancelled at fal before they ran (nothing paid): {', '.join(result.cancelled)}")
    if result.in_flight:
        say(
            f"  still running at fal: {', '.join(result.in_flight)}; run again to "
            "collect them (they are not submitted again)"
        )
    if result.waiting:
        by_reason: dict[str, list[str]] = {}
        for name, reason in result.waiting.items():
            by_reason.setdefault(reason, []).append(name)
        for reason, names in by_reason.items():
            click.echo(f"  {reason}: {', '.join(names)} not rendered")
        click.echo("  approve with `shotgraph approve PIPELINE NODE`, then run again")
    for name, failure in sorted(result.failed.items()):
        click.echo(click.style(f"  failed {name}: {failure.message}", fg="red"), err=True)
        if failure.hint:
            click.echo(f"    hint: {failure.hint}", err=True)
    for name, path in sorted(outputs.items()):
        if name in result.records:
            say(f"  output {name}: {display_path(path)}")
    for line in extra:
        say(f"  {line}")
    for note in result.notes:
        click.echo(f"  note: {note}", err=True)
    if result.stopped is not None:
        click.echo(click.style(f"stopped: {result.stopped.message}", fg="red"), err=True)
        if result.stopped.hint:
            click.echo(f"    hint: {result.stopped.hint}", err=True)
