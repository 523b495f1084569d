"""`run --json` is a summary a CI script can read, and each kind of ending has its own exit
code (the table in runner/errors.py and docs/running.md)."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from runner import cli
from runner.errors import EXIT_CODE_TABLE, ExitCode
from tests.run_helpers import GENERATION_NODES, ROOT, make_project, run_local, start_emulator


def run_json(
    pipeline: Path, url: str, store: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, dict[str, Any], str]:
    code = run_local(pipeline, url, store, "--json", *extra)
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def test_run_json_parses_and_matches_the_run(
    tmp_path: Path, render_pool: ProcessPoolExecutor, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = make_project(tmp_path / "p")
    store = tmp_path / "store"
    with start_emulator(render_pool) as emulator:
        code, first, err = run_json(pipeline, emulator.url, store, capsys)
        assert emulator.stats()["total_submissions"] == len(GENERATION_NODES)
        again_code, again, _ = run_json(pipeline, emulator.url, store, capsys)
    assert code == 0 and first["exit_code"] == 0 and first["status"] == "ok"
    assert "run tiny (local)" in err  # progress went to stderr, stdout is JSON alone
    nodes = first["nodes"]
    assert {n for n, node in nodes.items() if node["outcome"] == "submitted"} == GENERATION_NODES
    assert {n for n, node in nodes.items() if node["outcome"] == "made"} == {"best_frame", "cut"}
    assert first["totals"]["submitted"] == 5 and first["totals"]["rendered"] == 7
    # The local backend is free: what fal would charge is the estimate, nothing is "paid".
    assert all(node["estimated_usd"] == 0.04 for n, node in nodes.items() if n in GENERATION_NODES)
    lock = json.loads(pipeline.with_name("tiny.lock.json").read_text())
    # The files the run wrote (its output, the best frame): the loop reads their bytes back.
    assert {n for n, node in nodes.items() if node["output"]["path"]} == {"best_frame", "cut"}
    for name, node in nodes.items():
        assert node["key"] == lock["nodes"][name]["key"]
        assert node["output"]["sha256"] == lock["nodes"][name]["output"]["sha256"]
        if node["output"]["path"]:
            written = Path(node["output"]["path"]).read_bytes()
            assert hashlib.sha256(written).hexdigest() == node["output"]["sha256"]
        if name in GENERATION_NODES:
            assert node["request_id"] == lock["nodes"][name]["request_id"]
    assert first["lockfile"] == {"path": str(pipeline.with_name("tiny.lock.json")), "written": True}
    assert again_code == 0 and again["lockfile"]["written"] is False
    assert {node["outcome"] for node in again["nodes"].values()} == {"cached"}


def test_each_ending_has_its_documented_exit_code(
    tmp_path: Path, render_pool: ProcessPoolExecutor, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = make_project(tmp_path / "p")
    store = tmp_path / "store"
    with start_emulator(render_pool) as emulator:
        url = emulator.url
        # Over budget: refused before anything is sent.
        code, doc, err = run_json(pipeline, url, store, capsys, "--budget", "0.10")
        assert (code, doc["status"]) == (ExitCode.OVER_BUDGET, "over_budget")
        assert "exceeds the budget $0.10" in doc["error"]["message"] and "Traceback" not in err
        assert emulator.stats()["total_submissions"] == 0
        # A render failed: the node's error is in the summary, the rest was rendered.
        emulator.set_faults([{"kind": "fail", "prompt_contains": "wet street", "times": 1}])
        code, doc, _ = run_json(pipeline, url, store, capsys)
        assert (code, doc["status"]) == (ExitCode.RENDER_FAILED, "failed")
        assert doc["nodes"]["street"]["outcome"] == "failed"
        assert doc["nodes"]["street"]["error"]["message"]
        assert doc["nodes"]["cut"]["outcome"] == "skipped"
        assert doc["nodes"]["intro"]["outcome"] == "submitted"
        # Running again renders only what failed: a retry helped.
        code, doc, _ = run_json(pipeline, url, store, capsys)
        assert code == ExitCode.OK and doc["nodes"]["street"]["outcome"] == "submitted"
        assert doc["nodes"]["intro"]["outcome"] == "cached"
    # The pipeline no longer matches its lock: fix the pull request.
    pipeline.write_text(pipeline.read_text().replace("a wet street", "a dry street"))
    code, doc, err = run_json(pipeline, "http://127.0.0.1:9", store, capsys, "--frozen")
    assert (code, doc["status"]) == (ExitCode.USER, "invalid")
    assert "no longer matches" in doc["error"]["message"] and "no longer matches" in err
    # A broken pipeline: its errors, each with a line.
    pipeline.write_text(pipeline.read_text().replace("kind: t2v", "kind: t2v, guidance_scale: 3"))
    code, doc, _ = run_json(pipeline, "http://127.0.0.1:9", store, capsys)
    assert (code, doc["status"]) == (ExitCode.USER, "invalid")
    assert (
        doc["errors"][0]["key_path"] == "nodes.street.guidance_scale" and doc["errors"][0]["line"]
    )
    # A wrong command line.
    assert cli.run(["run", str(pipeline), "--jobs", "0"]) == ExitCode.USAGE


def test_the_exit_code_table_is_in_help_and_in_the_docs() -> None:
    from click.testing import CliRunner

    from runner.cli import cli as group

    docs = (ROOT / "docs" / "running.md").read_text()
    for args in ([], ["run"]):
        shown = CliRunner().invoke(group, [*args, "--help"]).output
        for code, meaning in EXIT_CODE_TABLE:
            assert f"{int(code):>5}  {meaning}" in shown
    for code, _ in EXIT_CODE_TABLE:
        assert f"| {int(code)} |" in docs, f"docs/running.md lacks exit code {int(code)}"
