"""`shotgraph ci review` holds each pipeline to its lockfile as the render on merge
(`run --frozen`) will: a pull request that edits a pipeline without committing its new
lockfile, or that brings a lockfile of another backend, fails its review, not its merge."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from runner import cli
from runner.errors import ExitCode
from runner.lock import lock_path
from tests.lock_helpers import locked

MERGE_FAILS = "**On merge, `run --frozen` fails:**"


@pytest.fixture
def studio(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A studio made by `shotgraph init`, its example locked as a fal run locks it."""
    assert cli.run(["init", str(tmp_path / "studio")]) == 0
    monkeypatch.chdir(tmp_path / "studio")
    monkeypatch.setenv("SHOTGRAPH_CACHE_DIR", str(tmp_path / "store"))
    locked(Path("pipelines/example.yaml"))
    return tmp_path / "studio"


def review(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = cli.run(["ci", "review", *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out


def test_a_pipeline_that_matches_its_lockfile_passes(
    studio: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = review(capsys)
    assert code == 0, out
    assert MERGE_FAILS not in out
    # The same lockfile is held to the backend it was rendered with.
    code, out = review(capsys, "--backend", "local")
    assert code == ExitCode.USER
    assert (
        f"{MERGE_FAILS} pipelines/example.lock.json was rendered with --backend fal, "
        "and this run uses --backend local. Fix: render it "
        "(`shotgraph run pipelines/example.yaml --backend local`) and commit "
        "pipelines/example.lock.json in this pull request."
    ) in out


def test_an_edit_without_its_lockfile_fails_the_review(
    studio: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = studio / "pipelines" / "example.yaml"
    pipeline.write_text(pipeline.read_text().replace("slips its mooring", "turns to sea"))
    code, out = review(capsys)
    assert code == ExitCode.USER
    assert f"{MERGE_FAILS} the pipeline no longer matches pipelines/example.lock.json" in out
    assert "(changed: " in out and "quay" in out.split(MERGE_FAILS)[1]
    # The plan is still there: the reviewer sees what the edit renders.
    assert "### Plan: example (`pipelines/example.yaml`)" in out
    locked(pipeline)  # the author renders it and commits the lockfile
    assert review(capsys)[0] == 0


def test_no_lockfile_fails_the_review(studio: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lock_path(studio / "pipelines" / "example.yaml").unlink()
    code, out = review(capsys)
    assert code == ExitCode.USER
    assert (
        f"{MERGE_FAILS} --frozen needs a lockfile, and pipelines/example.lock.json does not exist"
    ) in out


def test_a_damaged_lockfile_is_its_pipelines_error_and_the_review_goes_on(
    studio: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pipelines = studio / "pipelines"
    (pipelines / "second.yaml").write_text((pipelines / "example.yaml").read_text())
    locked(pipelines / "second.yaml")
    lock_path(pipelines / "example.yaml").write_text("{not json")
    code, out = review(capsys)
    assert code == ExitCode.USER
    assert "### pipelines/example.yaml: 1 error(s)" in out
    assert "error: cannot read the lockfile" in out and "hint: restore it from git" in out
    assert "### Plan: example (`pipelines/second.yaml`)" in out
    assert MERGE_FAILS not in out


def commit_all(where: Path) -> None:
    """Commit the studio as it is, as the pull request's base."""
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "base"]):
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=where,
            check=True,
            capture_output=True,
        )


def test_base_diffs_each_lockfile_to_the_pull_requests_base(
    studio: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    commit_all(studio)
    pipeline = Path("pipelines/example.yaml")
    text = pipeline.read_text()
    pipeline.write_text(text.replace("the mist slowly lifts", "the mist lifts at once"))
    locked(pipeline)
    code, out = review(capsys, "--base", "HEAD")
    assert code == 0, out
    assert "| harbour_more | changed | prompt |" in out
    assert "- The same shot continues" in out and "the mist [lifts at once.]" in out


def test_a_base_that_is_no_commit_fails_once_before_any_plan(
    studio: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    commit_all(studio)
    capsys.readouterr()
    code = cli.run(["ci", "review", "--base", "no-such-branch"])
    out, err = capsys.readouterr()
    assert code == ExitCode.USER
    assert "unknown git revision 'no-such-branch'" in err and "Traceback" not in err
    assert out == ""  # nothing planned before the base was known to be wrong
