"""The GitHub Action (action.yml) and the workflows shipped with shotgraph: valid for GitHub's
schemas, and the shell of each step run here as GitHub runs it (bash, the step's env), with
the local backend: the review and its comment, the render, and a cancel's SIGINT sent to
the step's shell alone."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.lock_helpers import locked
from tests.run_helpers import make_project, start_emulator, submitted

ROOT = Path(__file__).resolve().parent.parent
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
BIN = Path(sys.executable).parent
WORKFLOWS = [
    ROOT / "docs" / "examples" / "shotgraph-workflow.yml",
    ROOT / "runner" / "data" / "scaffold" / "github-workflow.yml",
]


def step(name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in ACTION["runs"]["steps"] if s.get("name") == name)
    return found


def run_step(name: str, env: dict[str, str], cwd: Path, **popen: Any) -> subprocess.Popen[str]:
    """The step's script in bash, as GitHub runs a composite step (`bash -e {0}`)."""
    outputs = cwd / "github-output"
    full = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "GITHUB_OUTPUT": str(outputs),
        **env,
    }
    return subprocess.Popen(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step(name)["run"]],
        cwd=cwd,
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def test_the_action_and_workflows_are_valid_for_github() -> None:
    checker = str(BIN / "check-jsonschema")
    for schema, files in (
        ("vendor.github-actions", [ROOT / "action.yml"]),
        ("vendor.github-workflows", WORKFLOWS),
    ):
        done = subprocess.run(
            [checker, "--builtin-schema", schema, *map(str, files)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    for script in [s["run"] for s in ACTION["runs"]["steps"] if "run" in s]:
        # Inputs reach scripts through env, never spliced into the shell (no injection).
        assert "${{" not in script
        assert subprocess.run(["bash", "-n", "-c", script], check=False).returncode == 0
    # A fork's pull request has a read-only token: no comment step that would fail its check.
    same_repo = "github.event.pull_request.head.repo.full_name == github.repository"
    comments = [step("Comment on the pull request")["if"]]
    scaffold = yaml.safe_load(WORKFLOWS[1].read_text())
    comments += [
        s["if"] for s in scaffold["jobs"]["review"]["steps"] if "comment" in s.get("run", "")
    ]
    assert len(comments) == 2 and all(same_repo in " ".join(c.split()) for c in comments)
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert {hook["id"] for hook in hooks} == {"shotgraph-validate", "shotgraph-schema"}


@pytest.fixture
def studio(tmp_path: Path) -> Iterator[Path]:
    """A studio repository made by `shotgraph init`, rendered on main, with a pull request
    branch that edits a shot and commits its new lockfile."""
    repo = tmp_path / "studio"
    subprocess.run([str(BIN / "shotgraph"), "init", str(repo)], check=True, capture_output=True)

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True
        )

    locked(repo / "pipelines" / "example.yaml")
    git("add", "-A")
    git("commit", "-qm", "the example, rendered")
    git("branch", "-M", "main")
    git("checkout", "-qb", "mist")
    pipeline = repo / "pipelines" / "example.yaml"
    pipeline.write_text(
        pipeline.read_text().replace("the mist slowly lifts", "the sun breaks through")
    )
    locked(pipeline)
    git("commit", "-qam", "the sun breaks through")
    yield repo


def test_the_review_step_and_its_comment(studio: Path, tmp_path: Path) -> None:
    report = tmp_path / "review.md"
    review = run_step(
        "Review",
        {
            "PIPELINES": "pipelines/*.yaml",
            "BACKEND": "fal",  # a plan sends nothing: no key needed
            "BUDGET": "5",
            "ARGS": "",
            "BASE": "main",
            "SHOTGRAPH_CACHE_DIR": str(tmp_path / "store"),
            "REPORT": str(report),
        },
        studio,
    )
    out, err = review.communicate(timeout=120)
    assert review.returncode == 0, out + err
    text = report.read_text()
    assert text == out
    assert "### Plan: example (`pipelines/example.yaml`)" in text
    assert "| harbour_more | extend |" in text and "**render**: cache entry missing" in text
    assert (
        "### Lock diff: `main:pipelines/example.lock.json` → `pipelines/example.lock.json`" in text
    )
    assert "the [mist slowly lifts.]" in text and "the [sun breaks through.]" in text
    assert f"report={report}" in (studio / "github-output").read_text()
    # The comment: gh, faked here, is given the report for the pull request.
    fake = tmp_path / "bin"
    fake.mkdir()
    calls = tmp_path / "gh-calls"
    (fake / "gh").write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    (fake / "gh").chmod(stat.S_IRWXU)
    comment = run_step(
        "Comment on the pull request",
        {"PR": "7", "REPORT": str(report), "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"},
        studio,
    )
    assert comment.wait(30) == 0
    assert calls.read_text() == f"pr comment 7 --edit-last --body-file {report}\n"


def test_the_render_step_renders_and_a_sigint_to_its_shell_alone_stops_it(
    tmp_path: Path, render_pool: ProcessPoolExecutor
) -> None:
    pipeline = make_project(tmp_path / "p")
    with start_emulator(render_pool) as emulator:
        # Rendered and committed on a laptop: the lockfile CI holds the render to.
        laptop = subprocess.run(
            [
                str(BIN / "shotgraph"),
                "run",
                str(pipeline),
                "--backend",
                "local",
                "--emulator-url",
                emulator.url,
                "--cache-dir",
                str(tmp_path / "laptop"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert laptop.returncode == 0, laptop.stdout + laptop.stderr
        # CI, with an empty store and a slow queue: one job runs, two wait.
        emulator.set_pace(latency=1.0, concurrency=1)
        store = tmp_path / "ci-store"
        summary = tmp_path / "run.json"
        env = {
            "PIPELINES": "tiny.yaml",
            "BACKEND": "local",
            "BUDGET": "1",
            "ARGS": f"--emulator-url {emulator.url}",
            "SHOTGRAPH_CACHE_DIR": str(store),
            "SUMMARY": str(summary),
            "FAL_KEY": "",
        }
        before = emulator.stats()["total_submissions"]
        shell = run_step("Render", env, pipeline.parent, start_new_session=True)
        deadline = time.monotonic() + 60
        while submitted(store) < 3:
            assert shell.poll() is None, shell.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(0.3)
        os.kill(shell.pid, signal.SIGINT)  # GitHub signals the step's shell, not its group
        out, err = shell.communicate(timeout=60)
        stats = emulator.stats()
    assert shell.returncode == 130, out + err
    assert "Traceback" not in out + err
    assert stats["cancelled"] == 2 and stats["total_submissions"] == before + 3
    document = json.loads(summary.read_text())
    assert document == json.loads(out)
    assert document[0]["status"] == "interrupted" and document[0]["interrupted_by"] == "SIGINT"
    assert f"summary={summary}" in (pipeline.parent / "github-output").read_text()


def test_a_run_whose_shell_is_killed_stops_cleanly(
    tmp_path: Path, render_pool: ProcessPoolExecutor
) -> None:
    """A step written without exec: the runner's SIGTERM kills the shell, and shotgraph,
    told by the kernel that its parent died, stops as at a SIGTERM."""
    pipeline = make_project(tmp_path / "p")
    store = tmp_path / "store"
    # Three seconds a job, one at a time: the queued two are still queued when the orphan,
    # however slow a loaded machine makes it, comes to cancel them.
    with start_emulator(render_pool, latency=3.0, concurrency=1) as emulator:
        command = (
            f"{BIN / 'shotgraph'} run {pipeline} --backend local --emulator-url {emulator.url} "
            f"--cache-dir {store} --plain; echo the shell went on"
        )
        shell = subprocess.Popen(
            ["bash", "-c", command], start_new_session=True, stdout=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 60
        while submitted(store) < 3:
            assert shell.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(0.3)
        shell.send_signal(signal.SIGTERM)
        assert shell.wait(10) == -signal.SIGTERM
        while emulator.stats()["cancelled"] < 2:  # the orphan cancels its queued jobs
            assert time.monotonic() < deadline, emulator.stats()
            time.sleep(0.05)
        while submitted(store) != 1:  # ... and keeps the running one journaled
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert emulator.stats()["total_submissions"] == 3
