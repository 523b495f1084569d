"""Small builders shared by tests: a throwaway project with a keyframe and a motion clip."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from runner.compile.check import CheckResult, check_pipeline
from runner.compile.steps import Compiled

FIXTURE_ASSETS = Path(__file__).parent / "fixtures" / "invalid" / "assets"

HEAD = """version: 1
name: test
characters:
  mara:
    description: a woman in a yellow raincoat
    keyframes: {front: assets/key.png}
motions: {orbit: assets/motion.mp4}
"""


@contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port that refuses connections for as long as the block runs: bound and
    never listening. (A port bound and closed again is free for another test's server to
    take, and a test counting on a refusal then meets that server.)"""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def project(root: Path) -> Path:
    """A project directory (a git work tree) with assets/key.png and assets/motion.mp4."""
    (root / ".git").mkdir(parents=True, exist_ok=True)
    shutil.copytree(FIXTURE_ASSETS, root / "assets", dirs_exist_ok=True)
    return root


def write(root: Path, body: str, *, head: str = HEAD, name: str = "p.yaml") -> Path:
    project(root)
    path = root / name
    path.write_text(head + body)
    return path


def compiled(root: Path, body: str, *, head: str = HEAD, backend: str = "fal") -> Compiled:
    result = check(root, body, head=head, backend=backend)
    assert not result.errors, "\n".join(e.render() for e in result.errors)
    assert result.compiled is not None
    return result.compiled


def check(root: Path, body: str, *, head: str = HEAD, backend: str = "fal") -> CheckResult:
    return check_pipeline(write(root, body, head=head), backend=backend)


def key_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path of a document (for mutation tests), the root's ``()`` first."""
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += key_paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += key_paths(value, (*prefix, i))
    return found
