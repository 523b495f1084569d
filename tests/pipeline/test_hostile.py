"""Pipelines from a pull request, written by an attacker: they cannot leak FAL_KEY, nor hang
or crash shotgraph.

The leak test sets ``FAL_KEY`` to a marker and runs a corpus of hostile pipelines
(``/proc/self``, ``/proc/self/environ``, symlinks out of the project, absolute paths, ``..``,
includes, imports) through ``plan --json -v`` and through ``run`` against the emulator; the
marker must appear in no request, lockfile, store, run log, output or message. The bombs of
benchmarks/hostile_input.py run in a child process with its address space capped: each
exits 1 with file:line and no traceback.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from benchmarks import hostile_input
from runner import cli
from runner.compile.check import check_pipeline
from tests.run_helpers import make_project, start_emulator

KEY_ID, KEY_SECRET = "markerid-5b1f0e", "markersecret-c93e7a"
FAL_KEY = f"{KEY_ID}:{KEY_SECRET}"
PNG = b"\x89PNG\r\n\x1a\n"


def corpus(project: Path, outside: Path) -> dict[str, str]:
    """Hostile pipelines by name; the files and links they rely on are made here."""
    (outside / "templates").mkdir(parents=True)
    (outside / "secret.txt").write_text(f"FAL_KEY={FAL_KEY}\n")
    (outside / "templates" / "x.j2").write_text(f"{FAL_KEY} {{{{ 1 }}}}")
    (outside / "presets.yaml").write_text(f"presets:\n  stolen: {{description: '{FAL_KEY}'}}\n")
    (outside / "secret.png").write_bytes(PNG + FAL_KEY.encode())
    templates = project / "templates"
    templates.mkdir(exist_ok=True)
    (templates / "evil.j2").symlink_to(outside / "secret.txt")
    (templates / "environ.j2").symlink_to("/proc/self/environ")
    (templates / "inc.j2").write_text("A shot of {% include 'environ.j2' %}")
    (project / "tlink").symlink_to(outside / "templates")
    (project / "stolen.yaml").symlink_to(outside / "presets.yaml")
    (project / "assets" / "stolen.png").symlink_to(outside / "secret.png")
    evil = outside / "evil.yaml"
    evil.write_text(
        "version: 1\nname: evil\ntemplates: .\n"
        "nodes:\n  a: {kind: t2v, prompt: {template: secret.txt}}\n"
    )
    (project / "linked.yaml").symlink_to(evil)
    t2v = "{kind: t2v, prompt: %s}"
    i2v = "{kind: i2v, image: {file: %s}, prompt: a slow turn}"
    return {
        "proc_self_templates": f"templates: /proc/self\nnodes:\n  a: {t2v % '{template: environ}'}",
        "proc_self_templates_slash": "templates: /proc/self/\n"
        f"nodes:\n  a: {t2v % '{template: environ}'}",
        "proc_environ_template_link": f"nodes:\n  a: {t2v % '{template: environ.j2}'}",
        "proc_environ_include": "nodes:\n  a: "
        + t2v % "{inline: \"{% include '/proc/self/environ' %}\"}",
        "proc_environ_include_link": f"nodes:\n  a: {t2v % '{template: inc.j2}'}",
        "absolute_templates": f"templates: {outside / 'templates'}\n"
        f"nodes:\n  a: {t2v % '{template: x.j2}'}",
        "dotdot_templates": f"templates: ../outside/templates\nnodes:\n  a: {t2v % '{template: x.j2}'}",
        "symlinked_templates_dir": f"templates: tlink\nnodes:\n  a: {t2v % '{template: x.j2}'}",
        "symlinked_template_file": f"nodes:\n  a: {t2v % '{template: evil.j2}'}",
        "dotdot_template_name": "nodes:\n  a: " + t2v % "{template: ../../outside/secret.txt}",
        "import_absolute": f"imports: [{outside / 'presets.yaml'}]\n"
        f"nodes:\n  a: {{kind: t2v, preset: stolen, prompt: x}}",
        "import_dotdot": "imports: [../outside/presets.yaml]\n"
        "nodes:\n  a: {kind: t2v, preset: stolen, prompt: x}",
        "import_symlink": "imports: [stolen.yaml]\nnodes:\n  a: {kind: t2v, preset: stolen, prompt: x}",
        "import_proc_environ": "imports: [/proc/self/environ]\nnodes:\n  a: {kind: t2v, prompt: x}",
        "file_symlink": f"nodes:\n  a: {i2v % 'assets/stolen.png'}",
        "file_absolute": f"nodes:\n  a: {i2v % (outside / 'secret.png')}",
        "file_dotdot": f"nodes:\n  a: {i2v % '../outside/secret.png'}",
        "file_proc_environ": f"nodes:\n  a: {i2v % '/proc/self/environ'}",
    }


@pytest.fixture
def hostile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, list[Path]]]:
    """(project, hostile pipelines in it), with FAL_KEY set to the marker."""
    monkeypatch.setenv("FAL_KEY", FAL_KEY)
    project = tmp_path / "project"
    make_project(project)
    pipelines = []
    for name, body in corpus(project, tmp_path / "outside").items():
        path = project / f"{name}.yaml"
        path.write_text(f"version: 1\nname: {name.replace('_', '-')}\n{body}\n")
        pipelines.append(path)
    pipelines.append(project / "linked.yaml")
    yield project, pipelines


def leaked(text: str | bytes) -> bool:
    data = text.encode() if isinstance(text, str) else text
    return KEY_ID.encode() in data or KEY_SECRET.encode() in data


def files_holding_the_key(*roots: Path) -> list[Path]:
    """Regular files under ``roots`` (links not followed: they are the attack) that hold
    either half of the key."""
    found = []
    for root in roots:
        for directory, _, names in os.walk(root):
            for name in names:
                path = Path(directory) / name
                if not path.is_symlink() and path.is_file() and leaked(path.read_bytes()):
                    found.append(path)
    return found


def test_no_hostile_pipeline_can_put_the_key_anywhere(
    hostile: tuple[Path, list[Path]],
    tmp_path: Path,
    render_pool: ProcessPoolExecutor,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project, pipelines = hostile
    store = tmp_path / "store"
    with start_emulator(render_pool) as emulator:
        for pipeline in pipelines:
            result = check_pipeline(pipeline, backend="local")
            assert result.errors, f"{pipeline.name} validated"
            steps = result.compiled.steps.values() if result.compiled else []
            assert not any(leaked(repr(step.body)) for step in steps), pipeline.name
            assert cli.run(["plan", str(pipeline), "--json", "-v", "--backend", "local"]) == 1
            run = ["run", str(pipeline), "--backend", "local", "--emulator-url", emulator.url]
            assert cli.run([*run, "--cache-dir", str(store), "--plain"]) == 1
            out, err = capsys.readouterr()
            assert not leaked(out + err), f"{pipeline.name}:\n{out}{err}"
            assert "Traceback" not in err and "internal error" not in err, err
            assert re.search(rf"{re.escape(pipeline.name)}(:\d+)?[: ]", err), err
        assert emulator.stats()["total_submissions"] == 0
        # The same project still renders, and the key is nowhere in what it leaves. (Through
        # a symlink to the project, which is fine: the lock's paths stay relative to it.)
        (tmp_path / "alias").symlink_to(project)
        valid = tmp_path / "alias" / "tiny.yaml"
        run = ["run", str(valid), "--backend", "local", "--emulator-url", emulator.url]
        assert cli.run([*run, "--cache-dir", str(store), "--plain"]) == 0
        assert cli.run(["plan", str(valid), "--json", "-v", "--cache-dir", str(store)]) == 0
        out, err = capsys.readouterr()
        assert not leaked(out + err)
    assert (project / "renders" / "cut.mp4").is_file()
    lock = json.loads((project / "tiny.lock.json").read_text())
    assert lock["outputs"] == {"best_frame": "renders/best.png", "cut": "renders/cut.mp4"}
    files = {i["file"] for e in lock["nodes"].values() for i in e["inputs"] if "file" in i}
    assert files and all(f.startswith("assets/") for f in files), files
    assert list((store / "logs").glob("*.jsonl"))
    assert files_holding_the_key(project, store) == []


@pytest.mark.parametrize("case", list(hostile_input.CASES))
def test_bombs_exit_1_with_a_line_and_no_traceback(case: str, tmp_path: Path) -> None:
    pipeline = hostile_input.write_case(tmp_path, case)
    commands = ("validate", "plan") if case == "alias bomb" else ("validate",)
    for command in commands:
        code, _, peak_mb, err = hostile_input.measure(
            pipeline, command, tmp_path / "store", memory_limit_mb=1024
        )
        assert code == 1, err
        assert "Traceback" not in err and "internal error" not in err, err
        assert re.search(r"hostile\.yaml:\d+ ", err), err
        assert peak_mb < 400, f"{case}: {peak_mb:.0f} MB"  # loosely: the bound is 200 MB
