"""What an animatic costs to render: CPU seconds per clip, for the demo's kinds of shot.

Each clip is 121 frames at 1280x720 (the demo's cinematic-5s preset), rendered in this
process by the emulator's renderer, as a render worker would. CPU time, not wall time: the
machine is shared, and CPU seconds move much less with what else runs. The fastest of
``--runs`` is kept.

    .venv/bin/python benchmarks/animatic_render.py [--runs 3] [--source DIR]

``--source`` renders with the shotgraph source in DIR instead (e.g. an older revision, from
``git archive REV | tar -x -C DIR``): the same clips before and after a change. ``--demo``
also renders the whole demo from scratch on the local backend and prints its wall time.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.reference import print_reference  # noqa: E402

ASSETS = ROOT / "pipelines" / "assets"
SHOT = (
    "Close-up of a woman in her thirties with short black hair and a yellow raincoat. "
    "Action: subtle breathing as she looks up at the rain. Camera: {}. "
    "Lighting: soft and consistent. Continuity: same outfit, same location, no scene cut."
)
# (name, kind, prompt, inputs): the demo's shots, and the other camera moves.
CASES: list[tuple[str, str, str, dict[str, str]]] = [
    ("t2v, slow push-in (demo street)", "t2v", SHOT.format("slow push-in"), {}),
    ("t2v, locked off", "t2v", SHOT.format("locked off"), {}),
    ("i2v, steady framing (demo intro)", "i2v", SHOT.format("steady framing"), {"image": "k"}),
    ("i2v, no camera words", "i2v", "Close-up of a woman.", {"image": "k"}),
    ("i2v, slow push-in", "i2v", SHOT.format("slow push-in"), {"image": "k"}),
    ("i2v, pan left", "i2v", SHOT.format("pan left"), {"image": "k"}),
    ("i2v, orbit right", "i2v", SHOT.format("orbit right"), {"image": "k"}),
    ("i2v, handheld", "i2v", SHOT.format("handheld"), {"image": "k"}),
    ("extend, stable (demo intro_more)", "extend", SHOT.format("stable, no zoom"), {"video": "c"}),
    ("extend, no camera words", "extend", "The same shot continues.", {"video": "c"}),
    (
        "multicondition, orbit reference (demo)",
        "multicondition",
        "A calm look.",
        {"image": "k", "video": "o"},
    ),
]


def render_all(runs: int, folder: Path) -> list[tuple[str, float, float]]:
    from runner.emulator.animatic import RenderSpec, render

    names = {field.name for field in dataclasses.fields(RenderSpec)}
    inputs = {
        "k": ASSETS / "characters" / "mara" / "three_quarter.png",
        "o": ASSETS / "motion" / "orbit.mp4",
        "c": folder / "continued.mp4",
    }

    def spec(kind: str, prompt: str, given: dict[str, str]) -> Any:
        extra: dict[str, Any] = {key: inputs[value] for key, value in given.items()}
        if "node" in names:
            extra["node"] = "shot"
        return RenderSpec(kind, "720p", "16:9", 121, 24, prompt, 7, f"animatic · {kind}", **extra)

    # the clip the extends continue: a 720p animatic, as the demo's intro
    render(spec("i2v", "Close-up.", {"image": "k"}), inputs["c"])
    rows = []
    for name, kind, prompt, given in CASES:
        cpu = wall = float("inf")
        for _ in range(runs):
            started_cpu, started = time.process_time(), time.perf_counter()
            outcome = render(spec(kind, prompt, given), folder / "out.mp4")
            cpu = min(cpu, time.process_time() - started_cpu)
            wall = min(wall, time.perf_counter() - started)
            assert outcome.error is None, outcome.error
        rows.append((name, cpu, wall))
    return rows


def demo_wall(source: Path) -> float:
    """Seconds to render the demo from scratch on the local backend (a scratch store)."""
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder) / "project"
        shutil.copytree(source / "pipelines", project)
        env = {**os.environ, "SHOTGRAPH_CACHE_DIR": f"{folder}/store", "PYTHONPATH": str(source)}
        started = time.perf_counter()
        command = [sys.executable, "-m", "runner", "run", "demo.yaml", "--backend", "local"]
        subprocess.run(command, cwd=project, env=env, check=True, capture_output=True)
        return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--source", type=Path, default=ROOT)
    parser.add_argument("--demo", action="store_true")
    args = parser.parse_args()
    print_reference()
    sys.path.insert(0, str(args.source.resolve()))
    with tempfile.TemporaryDirectory() as folder:
        rows = render_all(args.runs, Path(folder))
    print(f"121 frames at 1280x720, source {args.source}, best of {args.runs}:")
    print(f"  {'CPU s':>6} {'wall s':>7}  clip")
    for name, cpu, wall in rows:
        print(f"  {cpu:6.2f} {wall:7.2f}  {name}")
    if args.demo:
        print(f"demo from scratch, local backend: {demo_wall(args.source):.1f} s wall")
    return 0


if __name__ == "__main__":
    sys.exit(main())
