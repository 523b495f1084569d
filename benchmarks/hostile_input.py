#!/usr/bin/env python3
"""Hostile pipeline files through the CLI: each must exit 1 in under 2 s and 200 MB.

A pull request can submit any pipeline file to CI. These are the ones written to hang it,
exhaust its memory or crash shotgraph: a billion-laughs alias bomb of about 1 KB, nested
``range(100000)`` loops in a template, ``('a' * 10000000000)|length``, ``2 ** 10000000000``,
an integer of 4,301 digits (Python's int-conversion limit), a recursive macro, an import of
``/dev/zero`` and ``templates: /proc/self``. Each runs in a fresh process (``validate`` and
``plan``); its exit code, wall time (the whole process, interpreter start included) and
peak RSS are printed. Exit status 1 if any case
misses its bound.

    .venv/bin/python benchmarks/hostile_input.py [--repeat 3] [--memory-limit-mb 1024]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.reference import PEAK_RSS, print_reference  # noqa: E402

HEAD = "version: 1\nname: hostile\n"
WALL_LIMIT_S = 2.0
RSS_LIMIT_MB = 200.0


def _alias_bomb() -> str:
    lines = ["x-a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"x-{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    return HEAD + "\n".join(lines) + "\ndescription: *i\nnodes:\n  a: {kind: t2v, prompt: x}\n"


def _inline(template: str) -> str:
    return HEAD + 'nodes:\n  a: {kind: t2v, prompt: {inline: "' + template + '"}}\n'


CASES: dict[str, str] = {
    "alias bomb": _alias_bomb(),
    "loop bomb": _inline(
        "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"
    ),
    "memory bomb": _inline("{{ ('a' * 10000000000)|length }}"),
    "power bomb": _inline("{{ 2 ** 10000000000 }}"),
    "4,301-digit integer": HEAD + "nodes:\n  a: {kind: t2v, prompt: x, seed: " + "9" * 4301 + "}\n",
    "recursive macro": _inline("{% macro f(n) %}{{ f(n) }}{{ f(n) }}{% endmacro %}{{ f(1) }}"),
    "import /dev/zero": HEAD + "imports: [/dev/zero]\nnodes:\n  a: {kind: t2v, prompt: x}\n",
    "templates: /proc/self": HEAD
    + "templates: /proc/self\nnodes:\n  a: {kind: t2v, prompt: {template: environ}}\n",
}
COMMANDS = ("validate", "plan")

# The child: the CLI in-process, then its own figures as the last line of stdout.
MEASURE = (
    PEAK_RSS
    + """
import json, sys
from runner.cli import run
code = run(sys.argv[1:])
print(json.dumps({"code": code,
                  "peak_rss_mb": peak_rss_mb()}))
"""
)


@dataclass(frozen=True)
class Outcome:
    """One hostile file through one command, in a process of its own."""

    case: str
    command: str
    code: int
    wall: float
    peak_rss_mb: float
    stderr: str

    @property
    def within_bounds(self) -> bool:
        return self.code == 1 and self.wall < WALL_LIMIT_S and self.peak_rss_mb < RSS_LIMIT_MB


def write_case(directory: Path, case: str) -> Path:
    """The hostile pipeline ``case`` in a project of its own under ``directory``."""
    project = directory / case.replace(" ", "-").replace(":", "").replace("/", "")
    (project / ".git").mkdir(parents=True, exist_ok=True)
    path = project / "hostile.yaml"
    path.write_text(CASES[case])
    return path


def measure(
    pipeline: Path, command: str, store: Path, memory_limit_mb: int | None = None
) -> tuple[int, float, float, str]:
    """(exit code, wall seconds of the whole process, peak RSS in MB, stderr) of
    ``shotgraph <command>``; with
    ``memory_limit_mb`` the child's address space is capped, so a bomb cannot take the
    machine down with it."""

    def cap() -> None:
        if memory_limit_mb is not None:
            limit = memory_limit_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    args = [command, str(pipeline)]
    if command == "plan":
        args += ["--cache-dir", str(store)]
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=cap,
        check=False,
    )
    wall = time.perf_counter() - started
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    try:
        figures = json.loads(last)
    except ValueError:  # the child died before it could report
        return done.returncode, wall, float("nan"), done.stderr
    return int(figures["code"]), wall, figures["peak_rss_mb"], done.stderr


def run_all(repeat: int, memory_limit_mb: int | None) -> list[Outcome]:
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        for case in CASES:
            pipeline = write_case(Path(tmp), case)
            for command in COMMANDS:
                runs = [
                    measure(pipeline, command, Path(tmp) / "store", memory_limit_mb)
                    for _ in range(repeat)
                ]
                code = max(r[0] for r in runs)
                wall = statistics.median(r[1] for r in runs)
                rss = max(r[2] for r in runs)
                outcomes.append(Outcome(case, command, code, wall, rss, runs[-1][3]))
    return outcomes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory-limit-mb", type=int, default=1024)
    options = parser.parse_args()
    print_reference()
    outcomes = run_all(options.repeat, options.memory_limit_mb)
    print(f"{'case':<24} {'command':<9} {'exit':>4} {'wall s':>7} {'peak MB':>8}  ok")
    for o in outcomes:
        ok = "yes" if o.within_bounds else "NO"
        print(f"{o.case:<24} {o.command:<9} {o.code:>4} {o.wall:>7.2f} {o.peak_rss_mb:>8.1f}  {ok}")
    print(
        f"bounds: exit 1, under {WALL_LIMIT_S:g} s, under {RSS_LIMIT_MB:g} MB; "
        f"median of {options.repeat} runs, child address space capped at "
        f"{options.memory_limit_mb} MB"
    )
    return 0 if all(o.within_bounds for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
