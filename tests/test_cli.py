"""The command line: exit codes, output forms, and no traceback for a user error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from runner import cli
from tests.helpers import write

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "pipelines" / "demo.yaml"


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.run(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_validate_ok(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["validate", str(DEMO)], capsys)
    assert code == 0 and "ok (7 nodes)" in out


def test_validate_errors_exit_1_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "nodes:\n  a: {kind: t2v, prompt: x, guidance_scale: 4}\n")
    code, _, err = run(["validate", str(path)], capsys)
    assert code == 1
    assert "p.yaml:9 nodes.a.guidance_scale: error:" in err and "Traceback" not in err


def test_validate_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "nodes:\n  a: {kind: t2v, prompt: x, num_frames: 999}\n")
    code, out, _ = run(["validate", str(path), "--json"], capsys)
    report = json.loads(out)
    assert code == 1 and not report["valid"]
    [error] = report["errors"]
    assert error["line"] == 9 and error["key_path"] == "nodes.a.num_frames"


def test_strict_turns_warnings_into_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        "nodes:\n  a: {kind: extend, video: {motion: orbit}, prompt: x, expand_prompt: true}\n",
    )
    assert run(["validate", str(path)], capsys)[0] == 0
    assert run(["validate", str(path), "--strict"], capsys)[0] == 1


def test_plan_table_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["plan", str(DEMO)], capsys)
    assert code == 0
    assert "NODE" in out and "fal-ai/ltx-video-13b-distilled/extend" in out
    assert "estimated cost ~$0.20" in out
    code, out, _ = run(["plan", str(DEMO), "--json", "-v"], capsys)
    plan = json.loads(out)
    assert code == 0 and plan["total"]["estimated_usd"] == pytest.approx(0.2)
    intro = next(n for n in plan["nodes"] if n["node"] == "intro")
    assert (
        intro["frames"] == 121 and intro["fps"] == 24 and intro["seconds"] == pytest.approx(5.042)
    )
    assert intro["request"]["seed"] == 7 and intro["request"]["image_url"].startswith("sha256:")


def test_plan_budget(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["plan", str(DEMO), "--budget", "0.10"], capsys)
    assert code == 5 and "exceeds the budget $0.10" in err  # over budget
    assert run(["plan", str(DEMO), "--budget", "1"], capsys)[0] == 0
    assert "Exit 5 if the estimate" in " ".join(run(["plan", "--help"], capsys)[1].split())


def test_graph_formats(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["graph", str(DEMO), "--format", "dot"], capsys)
    assert code == 0 and out.startswith('digraph "rainy-night"')
    code, out, _ = run(["graph", str(DEMO)], capsys)
    assert code == 0 and out.startswith("flowchart LR")


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["plan"], capsys)[0] == 2
    assert run(["frobnicate"], capsys)[0] == 2
    assert run(["graph", str(DEMO), "--format", "png"], capsys)[0] == 2


def test_missing_file_is_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["validate", str(tmp_path / "nope.yaml")], capsys)
    assert code == 1 and "no such file" in err


def test_internal_error_exits_3_with_a_crash_log(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("runner.commands.common.check_pipeline", broken)
    code, _, err = run(["validate", str(DEMO)], capsys)
    assert code == 3 and "internal error (RuntimeError)" in err and "Traceback" not in err
    log = Path(err.split("the traceback is in ")[1].split(";")[0])
    assert "RuntimeError: boom" in log.read_text()
    log.unlink()


def test_console_script_runs() -> None:
    script = Path(sys.executable).parent / "shotgraph"  # what `pip install` put on PATH
    for command in ([str(script)], [sys.executable, "-m", "runner"]):
        done = subprocess.run([*command, "--version"], capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == 0 and "shotgraph" in done.stdout


def test_a_budget_cannot_be_held_for_an_unpriced_family(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "model: ltx-video\nnodes:\n  a: {kind: t2v, prompt: x}\n")
    code, out, err = run(["plan", str(path)], capsys)
    assert code == 0 and "unpriced" in out
    code, _, err = run(["plan", str(path), "--budget", "5"], capsys)
    assert code == 5 and "cannot hold a budget: no known price for a" in err


def test_each_error_is_printed_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pipeline = write(tmp_path, "nodes:\n  a: {kind: t2v, prompt: x, num_frames: 500}\n")
    for command in (
        ["validate", str(pipeline)],
        ["plan", str(pipeline)],
        ["graph", str(pipeline)],
        ["run", str(pipeline), "--backend", "local", "--plain"],
    ):
        code, _, err = run(command, capsys)
        assert code == 1
        assert err.count("nodes.a.num_frames") == 1, f"{command[0]}:\n{err}"
        assert "Traceback" not in err


def test_every_template_error_at_once_even_downstream_of_a_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "templates").mkdir(parents=True)
    (tmp_path / "templates" / "who.j2").write_text("A shot of\n{{ who }}.")
    pipeline = write(
        tmp_path,
        "nodes:\n"
        "  a: {kind: t2v, prompt: {template: who.j2}}\n"
        "  b: {kind: extend, video: {from: a}, prompt: {template: who.j2}}\n"
        "  c: {kind: extend, video: {from: b}, prompt: {inline: '{{ how }}'}}\n"
        "  d: {kind: i2v, image: {keyframe: mara.front}, prompt: {inline: '{{ how }}'}, guidance_scale: 3}\n"
        "  e: {kind: extend, video: {from: d}, prompt: {inline: '{{ character.name }} walks'}}\n",
    )
    code, _, err = run(["validate", str(pipeline)], capsys)
    assert code == 1
    lines = [line for line in err.splitlines() if " error: " in line]
    assert [line.split()[0].split(":")[-1] for line in lines] == ["9", "10", "11", "12", "12"], err
    assert "who.j2 line 2: 'who' is undefined (node a)" in err
    assert "who.j2 line 2: 'who' is undefined (node b)" in err
    assert "'how' is undefined (node c)" in err
    assert "'how' is undefined (node d)" in err
    assert "guidance_scale" in err
    # e reads its character from the keyframe of d, which failed: no false error for it.
    assert "(node e)" not in err
