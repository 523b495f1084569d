"""``validate`` answers from the compile memo a plan or run left, printing exactly what a
fresh check prints, and checks afresh when anything the memo read changed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runner import cli
from runner.commands import validate_cmd
from runner.compile.check import CheckResult
from runner.compile.memo import check_and_remember
from runner.store import Store
from tests.helpers import HEAD, project

BODY = """nodes:
  shot: {kind: i2v, image: {keyframe: mara.front}, prompt: {template: shot.j2}}
  more: {kind: extend, video: {from: shot}, prompt: she turns then smiles}
"""


class Checks:
    """Counts the pipelines validate checks afresh."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = validate_cmd.checked

        def counted(*args: object, **kwargs: object) -> CheckResult:
            self.count += 1
            return real(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(validate_cmd, "checked", counted)


@pytest.fixture
def pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = project(tmp_path / "proj")
    (root / "templates").mkdir()
    (root / "templates" / "shot.j2").write_text("{{ character.name }} breathes")
    path = root / "p.yaml"
    path.write_text(HEAD + BODY)
    monkeypatch.chdir(root)
    monkeypatch.delenv("SHOTGRAPH_CACHE_DIR", raising=False)
    return path


def remember(pipeline: Path, backend: str = "local") -> None:
    """What a plan or run leaves in the project's store."""
    store = pipeline.parent / ".shotgraph"
    Store.open(store).close()
    assert check_and_remember(pipeline, backend, store).memo_id is not None


def validate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.run(["validate", *args])
    said = capsys.readouterr()
    return code, said.out, said.err


@pytest.mark.parametrize("spelled", ["absolute", "relative"])
@pytest.mark.parametrize("as_json", [False, True])
def test_the_memo_answers_as_a_fresh_check_would(
    pipeline: Path,
    spelled: str,
    as_json: bool,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = [str(pipeline) if spelled == "absolute" else "p.yaml", "--backend", "local"]
    args += ["--json"] if as_json else []
    fresh = validate(capsys, *args)  # no store yet: nothing to remember from
    assert "warning" in fresh[1] + fresh[2] and fresh[0] == 0
    remember(pipeline)
    checks = Checks(monkeypatch)
    assert validate(capsys, *args) == fresh
    # JSON names each finding's file as spelled on the command line: a relative spelling
    # is checked afresh; a terminal shows it relative to here either way.
    assert checks.count == (1 if as_json and spelled == "relative" else 0)


def test_a_change_is_checked_afresh(
    pipeline: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    remember(pipeline)
    checks = Checks(monkeypatch)
    validate(capsys, "p.yaml", "--backend", "local")
    assert checks.count == 0
    validate(capsys, "p.yaml")  # another backend: another memo (none yet)
    assert checks.count == 1
    (pipeline.parent / "templates" / "shot.j2").write_text("{{ nobody }} breathes")
    code, _, err = validate(capsys, "p.yaml", "--backend", "local")
    assert checks.count == 2 and code == 1 and "nobody" in err


def test_a_path_through_dot_dot_is_checked_afresh(
    pipeline: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    remember(pipeline)
    checks = Checks(monkeypatch)
    (pipeline.parent / "sub").mkdir()
    validate(capsys, os.path.join("sub", "..", "p.yaml"), "--backend", "local")
    assert checks.count == 1


def test_validate_never_writes_a_memo(pipeline: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = pipeline.parent / ".shotgraph"
    remember(pipeline, "fal")
    before = sorted(p.name for p in (store / "memos").iterdir())
    validate(capsys, str(pipeline), "--backend", "local")
    assert sorted(p.name for p in (store / "memos").iterdir()) == before
