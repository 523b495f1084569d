"""Shared pieces of the end-to-end tests: a small project, an emulator, and readers for what
a run leaves behind (lockfile, run log, store)."""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from runner import cli
from runner.emulator import EmulatorConfig, EmulatorServer
from runner.lock import Lock, lock_path, read_lock

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "pipelines" / "assets"

# The demo's shape (every node kind), with clips small enough to render in a blink: 9 frames
# at 480p, the least LTX-Video takes, in the demo's wide frame (what the benchmarks render).
WIDE = """version: 1
name: tiny
defaults:
  preset: fast-preview
  num_frames: 9
  frame_rate: 8
  expand_prompt: false
characters:
  mara:
    description: a woman in a yellow raincoat
    keyframes:
      front: assets/characters/mara/front_closeup.png
      side: assets/characters/mara/three_quarter.png
motions:
  orbit: assets/motion/orbit.mp4
nodes:
  street: {kind: t2v, prompt: {template: establishing.j2, vars: {place: a wet street}}}
  intro:
    kind: i2v
    image: {keyframe: mara.side}
    prompt: {template: shot.j2, vars: {shot: Close-up, action: ACTION}}
  intro_more: {kind: extend, video: {from: intro}, prompt: {template: continue.j2}}
  orbit: {kind: multicondition, image: {keyframe: mara.front}, video: {motion: orbit}, prompt: {template: motion.j2}}
  best_frame: {kind: frame, video: {from: intro_more}, at: last}
  new_angle: {kind: i2v, image: {from: best_frame}, prompt: {template: shot.j2, vars: {action: a slow turn}}}
  cut: {kind: stitch, clips: [street, intro_more, orbit, new_angle]}
outputs:
  cut: renders/cut.mp4
  best_frame: renders/best.png
"""
# What the tests render: the same shots, square. 480x480 draws and encodes in 60 % of the
# time 848x480 takes, and no test of this pipeline looks at the frame's shape.
PIPELINE = WIDE.replace(
    "  expand_prompt: false\n", '  expand_prompt: false\n  aspect_ratio: "1:1"\n'
)
GENERATION_NODES = {"street", "intro", "intro_more", "orbit", "new_angle"}


def make_project(root: Path, *, action: str = "subtle breathing", text: str = PIPELINE) -> Path:
    """A project (a git work tree) holding the tiny pipeline and the example assets."""
    root.mkdir(parents=True, exist_ok=True)
    (root / ".git").mkdir(exist_ok=True)
    if not (root / "assets").exists():
        shutil.copytree(ASSETS, root / "assets")
    path = root / "tiny.yaml"
    path.write_text(text.replace("ACTION", action))
    return path


# Emulators the tests start draw their animatics at a quarter of the size and scale them up
# (EmulatorConfig.render_scale, a test aid): a quarter of the CPU, the same sizes, frame counts
# and protocol. A test that looks at what is drawn (text in the band), needs two prompts to
# draw differently, or compares outputs with a `--backend local` run (which draws at full
# size) asks for FULL_SIZE.
DRAWN_SMALL = 0.25
FULL_SIZE = 1.0


def start_emulator(pool: ProcessPoolExecutor, **config: Any) -> EmulatorServer:
    settings: dict[str, Any] = {
        "latency": 0.0,
        "concurrency": 8,
        "require_auth": False,
        "render_scale": DRAWN_SMALL,
    }
    settings.update(config)
    return EmulatorServer(EmulatorConfig(**settings), executor=pool).start()


def run_local(pipeline: Path, url: str, store: Path, *extra: str) -> int:
    """`shotgraph run` in this process, on the local backend against the emulator at ``url``."""
    args = ["run", str(pipeline), "--backend", "local", "--emulator-url", url]
    return cli.run([*args, "--cache-dir", str(store), "--plain", *extra])


def lock_of(pipeline: Path) -> Lock:
    return read_lock(lock_path(pipeline))


def output_hashes(pipeline: Path) -> dict[str, str]:
    return {name: entry.output.sha256 for name, entry in lock_of(pipeline).nodes.items()}


def last_run_events(store_root: Path) -> list[dict[str, Any]]:
    logs = sorted((store_root / "logs").glob("*.jsonl"), key=lambda p: p.stat().st_mtime_ns)
    return [json.loads(line) for line in logs[-1].read_text().splitlines()]


def rendered(store_root: Path) -> set[str]:
    """Nodes the last run rendered (not found in the cache)."""
    return {e["node"] for e in last_run_events(store_root) if e["event"] == "NodeDone"}


class Lines:
    """What a :func:`spawn_run` process prints, read as it comes: a test waits for the line
    that says a thing happened (:meth:`until`), not for a while."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        self.process = process
        self.lines: list[str] = []
        self._fd = process.stdout.fileno()
        self._pending = b""

    def until(self, done: Callable[[list[str]], bool], timeout: float = 120) -> list[str]:
        """Every line so far, once ``done(lines)``; fails if the run ends first."""
        deadline = time.monotonic() + timeout
        while not done(self.lines):
            left = deadline - time.monotonic()
            assert left > 0 and select.select([self._fd], [], [], left)[0], self.lines
            chunk = os.read(self._fd, 65536)  # unbuffered: communicate() gets the rest
            assert chunk, f"the run ended first: {self.lines}"
            *complete, self._pending = (self._pending + chunk).split(b"\n")
            self.lines += [line.decode() for line in complete]
        return self.lines

    def finish(self, timeout: float = 120) -> tuple[str, str]:
        """The whole of stdout and stderr, once the process has ended."""
        out, err = self.process.communicate(timeout=timeout)
        read = "".join(line + "\n" for line in self.lines) + self._pending.decode()
        return read + out, err


def spawn_run(
    pipeline: Path, store: Path, *extra: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """`shotgraph run` in a process of its own, so a test can kill it or race two of them."""
    command = [
        sys.executable,
        "-m",
        "runner",
        "run",
        str(pipeline),
        "--cache-dir",
        str(store),
        "--plain",
        *extra,
    ]
    return popen(command, env or {})


def popen(command: list[str], env: Mapping[str, str]) -> subprocess.Popen[str]:
    """``command`` started from the project's root, its output piped, ``env`` added to ours."""
    return subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )


def submitted(store: Path) -> int:
    """Jobs the store's journal says were submitted to fal and are not collected yet."""
    if not (store / "records").exists():
        return 0
    from runner.store import Store

    with Store.open(store) as opened:
        return sum(1 for _, entry in opened.in_flight() if entry.state == "submitted")
