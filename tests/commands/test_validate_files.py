"""`validate` takes many files, pipelines and preset files, each checked against its own
schema: what a pre-commit hook hands it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner import cli

ROOT = Path(__file__).resolve().parents[2]


def test_validate_checks_every_file_pipelines_and_presets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ".git").mkdir()
    good = tmp_path / "good.yaml"
    good.write_text("version: 1\nname: g\nnodes:\n  a: {kind: t2v, prompt: x}\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: b\nnodes:\n  a: {kind: t2v, prompt: x, num_frames: 5000}\n")
    presets = tmp_path / "looks.yaml"
    presets.write_text("presets:\n  rainy:\n    extends: cinematic-5s\n    resolution: 360p\n")
    fine = ROOT / "pipelines" / "presets" / "studio.yaml"
    code = cli.run(["validate", str(good), str(bad), str(presets), str(fine)])
    out, err = capsys.readouterr()
    assert code == 1
    assert "good.yaml: ok (1 nodes)" in out and "studio.yaml: ok (2 presets)" in out
    assert "bad.yaml:4 nodes.a.num_frames" in err
    assert 'looks.yaml:4 presets.rainy.resolution: error: "360p" is not one of' in err
    assert cli.run(["validate", str(good), str(fine)]) == 0
    capsys.readouterr()
    assert cli.run(["validate", "--json", str(good), str(presets)]) == 1
    reports = json.loads(capsys.readouterr().out)
    assert [r["valid"] for r in reports] == [True, False]
    assert reports[1]["errors"][0]["key_path"] == "presets.rainy.resolution"


def test_a_preset_file_is_checked_as_a_pipeline_checks_its_imports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ".git").mkdir()
    presets = tmp_path / "looks.yaml"
    presets.write_text("presets:\n  a: {bogus: 1}\n  b: {extends: nowhere}\nextra: 1\n")
    assert cli.run(["validate", str(presets)]) == 1
    err = capsys.readouterr().err
    assert "looks.yaml:2 presets.a.bogus: error: unknown key 'bogus'" in err
    assert "looks.yaml:4 extra: error: unknown key 'extra' in a preset file" in err
    assert "extends 'nowhere', which is neither built in nor in this file" in err


def test_validate_needs_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(["validate"]) == 2
