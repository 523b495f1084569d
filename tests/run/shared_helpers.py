"""Machines sharing one store, for the end-to-end tests: each a project clone with a local
store of its own, reaching the same bucket and the same emulator (as they would reach fal),
under a host name of its own so that only leases can tell whether another one lives."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.run_helpers import popen

# `shotgraph` under another host name: a second machine, as far as liveness goes.
AS_MACHINE = """
import socket, sys
socket.gethostname = lambda: sys.argv[1]
from runner.cli import exit_with, run
exit_with(run(sys.argv[2:]))  # as the shotgraph command ends
"""


def clone(project: Path, where: Path) -> Path:
    """Another checkout of a project: what git would give (no local store, no outputs)."""
    shutil.copytree(project, where, ignore=shutil.ignore_patterns(".store", "renders"))
    return where


def spawn_machine(
    name: str, pipeline: Path, env: Mapping[str, str], *args: str
) -> subprocess.Popen[str]:
    """``shotgraph run`` on machine ``name``: its local store beside the pipeline."""
    command = [sys.executable, "-c", AS_MACHINE, name, "run", str(pipeline), "--plain"]
    command += ["--cache-dir", str(pipeline.parent / ".store"), *args]
    return popen(command, env)


def machine_env(server: Any, url: str, **extra: str) -> dict[str, str]:
    """What each machine is given: the AWS variables, the store, a short lease."""
    return {**server.env(), "SHOTGRAPH_STORE": url, **extra}


def t2v_pipeline(folder: Path, nodes: int, salt: str, outputs: int = 3) -> Path:
    """``nodes`` small text-to-video shots (the least LTX-Video renders: 9 frames, 480p,
    square), the first few of them outputs."""
    (folder / ".git").mkdir(parents=True, exist_ok=True)
    lines = [
        "version: 1",
        "name: many",
        "defaults: {num_frames: 9, frame_rate: 8, resolution: 480p, aspect_ratio: '1:1',"
        " expand_prompt: false}",
        "nodes:",
        *(f"  s{i}: {{kind: t2v, prompt: '{salt} shot {i}', seed: {i}}}" for i in range(nodes)),
        "outputs:",
        *(f"  s{i}: renders/s{i}.mp4" for i in range(outputs)),
    ]
    path = folder / "many.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path
