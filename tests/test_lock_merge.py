"""Two branches that change different shots merge their lockfiles with plain `git merge`,
with no conflict, into the lockfile of the merged pipeline: even when the shots are
neighbours in the file, and when nodes are added at the end or removed."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.lock_helpers import locked

PIPELINE = """version: 1
name: scenes
defaults: {preset: fast-preview}
nodes:
  alley: {kind: t2v, prompt: An empty alley at dawn}

  bridge: {kind: t2v, prompt: A bridge in fog}

  bridge_more: {kind: extend, video: {from: bridge}, prompt: The fog lifts}

  harbour: {kind: t2v, prompt: Boats in a harbour}

  market: {kind: t2v, prompt: A busy market}
"""
HARBOUR = "  harbour: {kind: t2v, prompt: Boats in a harbour}\n\n"


def git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )


def branch(repo: Path, name: str, text: str) -> None:
    """A branch off main that edits the pipeline and commits it with its new lockfile."""
    assert git(repo, "checkout", "-q", "-b", name, "main").returncode == 0
    (repo / "scenes.yaml").write_text(text)
    locked(repo / "scenes.yaml")
    git(repo, "add", "-A")
    assert git(repo, "commit", "-qm", name).returncode == 0


def test_branches_that_change_different_shots_merge_their_lockfiles(tmp_path: Path) -> None:
    repo = tmp_path / "studio"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "scenes.yaml").write_text(PIPELINE)
    locked(repo / "scenes.yaml")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "scenes, rendered")
    # alley and bridge are neighbours in the lockfile; bridge's change reaches bridge_more.
    # One branch also adds a shot after the last, the other removes one.
    one = PIPELINE.replace("at dawn", "at dusk") + "\n  zoo: {kind: t2v, prompt: A sleepy zoo}\n"
    two = PIPELINE.replace("in fog", "in rain").replace(HARBOUR, "")
    branch(repo, "one", one)
    branch(repo, "two", two)
    git(repo, "checkout", "-q", "main")
    assert git(repo, "merge", "-q", "--no-edit", "one").returncode == 0
    merged = git(repo, "merge", "--no-edit", "two")
    # (The pipeline merges too: its shots are blocks apart, as in the examples.)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    lock = repo / "scenes.lock.json"
    merged_lock = lock.read_text()
    # What git made is exactly the lockfile of the merged pipeline.
    assert (repo / "scenes.yaml").read_text() == one.replace("in fog", "in rain").replace(
        HARBOUR, ""
    )
    assert merged_lock == locked(repo / "scenes.yaml").read_text()
    assert '"zoo"' in merged_lock and '"harbour"' not in merged_lock
