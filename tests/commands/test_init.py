"""`shotgraph init` as a new user meets it: the next steps it prints work from where they
are typed, a second init keeps the studio's own files, the modelines point at the schemas
it wrote, and a directory already in a repository is not made a repository of its own."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from runner import cli
from runner.pipeline.settings import ProjectSettings, read_settings

NEXT = re.compile(r"^next: (.*)$", re.MULTILINE)


def init(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert cli.run(["init", *args]) == 0
    out: str = capsys.readouterr().out
    return out


def test_the_next_steps_work_from_where_they_are_typed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    out = init(capsys, "my studio")
    (steps,) = NEXT.findall(out)
    assert steps.startswith("cd 'my studio'; shotgraph validate pipelines/example.yaml;")
    monkeypatch.chdir(tmp_path / "my studio")
    validate = shlex.split(steps.split(";")[1])
    assert validate[0] == "shotgraph" and cli.run(validate[1:]) == 0
    # Typed in the studio itself, there is nowhere to cd to.
    (steps,) = NEXT.findall(init(capsys))
    assert steps.startswith("shotgraph validate")


def test_a_second_init_keeps_what_is_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    init(capsys, "studio")
    pipeline = tmp_path / "studio" / "pipelines" / "example.yaml"
    pipeline.write_text(pipeline.read_text() + "# ours\n")
    out = init(capsys, "studio")
    assert "kept  studio/pipelines/example.yaml (it was there already)" in out
    assert "wrote" not in out
    assert pipeline.read_text().endswith("# ours\n")


def test_the_modelines_point_at_the_schemas_it_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    init(capsys, str(tmp_path))
    for written in ("pipelines/example.yaml", "presets/studio.yaml"):
        first = (tmp_path / written).read_text().splitlines()[0]
        match = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)
        assert match, first
        assert (tmp_path / written).parent.joinpath(match[1]).resolve().is_file(), first
    monkeypatch.chdir(tmp_path)
    assert cli.run(["schema", "--check"]) == 0


def test_in_a_subdirectory_of_a_repository_it_makes_no_other_and_says_where_ci_looks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    out = init(capsys, str(tmp_path / "studio"))
    assert "initialised" not in out
    assert not (tmp_path / "studio" / ".git").exists()
    assert (tmp_path / "studio" / ".github" / "workflows" / "shotgraph.yml").is_file()
    # ... where GitHub and pre-commit do not look: it says so.
    assert f"note: {tmp_path / 'studio'} is inside the repository at {tmp_path}" in out
    assert "move the two files there" in out
    # At the root of a repository there is nothing to say.
    assert "note:" not in init(capsys, str(tmp_path))


def test_an_install_ci_cannot_reach_is_pointed_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    local = "git+file:///home/me/shotgraph@0123abc"
    out = init(capsys, str(tmp_path / "a"), "--install", local)
    workflow = (tmp_path / "a" / ".github" / "workflows" / "shotgraph.yml").read_text()
    assert f'SHOTGRAPH_INSTALL: "{local}"' in workflow
    assert f"note: the workflow installs shotgraph from {local}, a path on this machine" in out
    out = init(capsys, str(tmp_path / "b"), "--install", "git+https://git.example/shotgraph@v1")
    assert "note:" not in out


def test_a_gitignore_of_its_own_gets_the_store_added_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gitignore = tmp_path / ".gitignore"
    gitignore.write_text("node_modules/\nrenders/")  # no final newline
    out = init(capsys, str(tmp_path))
    assert f"added to {gitignore}: .shotgraph/" in out
    lines = gitignore.read_text().splitlines()
    assert lines[:2] == ["node_modules/", "renders/"]
    assert lines.count(".shotgraph/") == 1 and lines.count("renders/") == 1
    # git now keeps the store out.
    (tmp_path / ".shotgraph").mkdir()
    (tmp_path / ".shotgraph" / "media").write_text("x")
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert ".shotgraph" not in status
    # Once is enough.
    again = init(capsys, str(tmp_path))
    assert "added to" not in again and f"kept  {gitignore}" in again


def test_the_settings_file_it_writes_is_read_and_filled_in_names_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = init(capsys, str(tmp_path))
    settings = tmp_path / "shotgraph.toml"
    assert "shotgraph.toml" in out and settings.is_file()
    # As written: a valid settings file with no shared store yet (each machine its own).
    assert read_settings(tmp_path) == ProjectSettings(path=settings)
    # The team fills in its bucket by uncommenting the [store] table it shows.
    template = settings.read_text()
    filled = re.sub(r"^# (\[store\]|\w+ = .*)$", r"\1", template, flags=re.MULTILINE)
    settings.write_text(filled.replace("BUCKET", "studio-renders"))
    read = read_settings(tmp_path)
    assert read.store_url == "s3://studio-renders/shotgraph"
    assert (read.store_region, read.store_lease, read.store_timeout) == ("us-east-1", 60, 20)
