"""The confinement rule (runner/pipeline/confine.py) and every path a pipeline names going through it.

Symlinks and FIFOs cannot live in tests/fixtures/ (git would carry the link, not the
attack), so these cases are built in a temporary directory: a project (a git work tree) and,
beside it, an "outside" directory standing for ~/.ssh, /etc or another checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runner import cli
from runner.compile.check import check_pipeline
from runner.pipeline.confine import Project, Refused, confine, find_project_root, read_confined
from runner.pipeline.load import MAX_PRESET_FILE_BYTES
from tests.run_helpers import make_project

SECRET = "the-secret-outside-the-project"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    directory = tmp_path / "outside"
    (directory / "templates").mkdir(parents=True)
    (directory / "secret.txt").write_text(f"{SECRET}\n")
    (directory / "templates" / "x.j2").write_text(f"{SECRET} {{{{ 1 }}}}")
    (directory / "presets.yaml").write_text(f"presets:\n  stolen: {{description: {SECRET}}}\n")
    return directory


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / ".git").mkdir(parents=True)
    (root / "templates").mkdir()
    (root / "templates" / "ok.j2").write_text("A {{ who }} shot.")
    return root


def write(project: Path, body: str, name: str = "p.yaml") -> Path:
    path = project / name
    path.write_text("version: 1\nname: p\n" + body)
    return path


def errors_of(pipeline: Path) -> list[str]:
    result = check_pipeline(pipeline)
    assert result.errors, "a hostile pipeline must not validate"
    return [f"{e.location.line} {e.message} | {e.hint}" for e in result.errors]


# -- the rule itself ----------------------------------------------------------------------


def test_paths_inside_the_project_are_allowed(project: Path) -> None:
    rule = Project.at(project)
    assert confine(rule, "templates/ok.j2", project) == project / "templates" / "ok.j2"
    assert confine(rule, "missing/later.mp4", project) == project / "missing" / "later.mp4"
    assert confine(rule, project / "templates", project, expect="dir") == project / "templates"
    (project / "alias.j2").symlink_to(project / "templates" / "ok.j2")
    assert confine(rule, "alias.j2", project) == project / "templates" / "ok.j2"


@pytest.mark.parametrize(
    ("written", "fragment"),
    [
        ("/etc/passwd", "outside the project directory"),
        ("../outside/secret.txt", "outside the project directory"),
        ("templates/../../outside/secret.txt", "outside the project directory"),
        ("/proc/self/environ", "special file"),
        ("/proc/self", "special file"),
        ("/dev/zero", "special file"),
        ("/sys/kernel", "special file"),
    ],
)
def test_paths_outside_or_special_are_refused(
    project: Path, outside: Path, written: str, fragment: str
) -> None:
    with pytest.raises(Refused, match=fragment):
        confine(Project.at(project), written, project)


def test_symlinks_are_followed_before_the_check(project: Path, outside: Path) -> None:
    (project / "link.txt").symlink_to(outside / "secret.txt")
    (project / "dir").symlink_to(outside)
    (project / "proc").symlink_to("/proc/self")
    rule = Project.at(project)
    for written in ("link.txt", "dir/secret.txt", "dir"):
        with pytest.raises(Refused, match="through a symlink"):
            confine(rule, written, project)
    with pytest.raises(Refused, match="special file"):
        confine(rule, "proc/environ", project)


def test_fifos_devices_and_directories_are_not_files(project: Path) -> None:
    os.mkfifo(project / "fifo.yaml")
    rule = Project.at(project)
    with pytest.raises(Refused, match="is a FIFO, not a regular file"):
        confine(rule, "fifo.yaml", project)
    with pytest.raises(Refused, match="is a directory, not a regular file"):
        confine(rule, "templates", project)
    with pytest.raises(Refused, match="is a regular file, not a directory"):
        confine(rule, "templates/ok.j2", project, expect="dir")


def test_sizes_are_checked_before_and_while_reading(project: Path) -> None:
    (project / "big.yaml").write_bytes(b"x" * 2000)
    rule = Project.at(project)
    with pytest.raises(Refused, match="2,000 bytes; at most 1,000"):
        confine(rule, "big.yaml", project, max_bytes=1000)
    real = confine(rule, "big.yaml", project)
    with pytest.raises(Refused, match="larger than 1,000 bytes"):
        read_confined(real, "big.yaml", 1000)
    assert read_confined(real, "big.yaml", 2000) == b"x" * 2000


def test_the_project_is_found_from_the_path_as_given(tmp_path: Path, outside: Path) -> None:
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    (project / "pipelines").mkdir()
    link = project / "pipelines" / "linked.yaml"
    link.symlink_to(outside / "secret.txt")
    assert Project.of_pipeline(link).root == project
    assert find_project_root(outside) == outside  # no git work tree: the directory itself


# -- every path a pipeline names ------------------------------------------------------------


def test_a_symlinked_templates_directory_is_refused(project: Path, outside: Path) -> None:
    (project / "tlink").symlink_to(outside / "templates")
    pipeline = write(
        project, "templates: tlink\nnodes:\n  a: {kind: t2v, prompt: {template: x.j2}}\n"
    )
    assert any(e.startswith("3 ") and "through a symlink" in e for e in errors_of(pipeline))


def test_the_default_templates_directory_as_a_symlink_is_refused(
    tmp_path: Path, outside: Path
) -> None:
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    (project / "templates").symlink_to(outside / "templates")
    pipeline = write(project, "nodes:\n  a: {kind: t2v, prompt: {template: x.j2}}\n")
    errors = errors_of(pipeline)
    assert any(e.startswith("4 ") and "outside the project" in e for e in errors), errors


def test_a_template_file_symlinked_outside_is_refused(project: Path, outside: Path) -> None:
    (project / "templates" / "evil.j2").symlink_to(outside / "secret.txt")
    pipeline = write(project, "nodes:\n  a: {kind: t2v, prompt: {template: evil.j2}}\n")
    errors = errors_of(pipeline)
    assert any("template 'evil.j2' is outside the project" in e for e in errors), errors


def test_an_include_through_a_symlink_is_refused(project: Path, outside: Path) -> None:
    (project / "templates" / "evil.j2").symlink_to("/proc/self/environ")
    (project / "templates" / "inc.j2").write_text("Look:\n{% include 'evil.j2' %}")
    pipeline = write(project, "nodes:\n  a: {kind: t2v, prompt: {template: inc.j2}}\n")
    errors = errors_of(pipeline)
    assert any("inc.j2 line 2" in e and "special file" in e for e in errors), errors


def test_imports_are_confined_and_size_limited(project: Path, outside: Path) -> None:
    (project / "stolen.yaml").symlink_to(outside / "presets.yaml")
    (project / "huge.yaml").write_text("presets: {}\n" + "#" * MAX_PRESET_FILE_BYTES)
    pipeline = write(
        project,
        f"imports: [stolen.yaml, {outside / 'presets.yaml'}, huge.yaml]\n"
        "nodes:\n  a: {kind: t2v, prompt: x}\n",
    )
    errors = errors_of(pipeline)
    assert sum("outside the project" in e for e in errors) == 2, errors
    assert any("at most 1,048,576 are read" in e for e in errors), errors
    assert all(e.startswith("3 ") for e in errors), errors


def test_media_files_and_outputs_through_symlinks_are_refused(project: Path, outside: Path) -> None:
    (outside / "key.png").write_bytes(b"\x89PNG not really")
    (project / "key.png").symlink_to(outside / "key.png")
    (project / "renders").symlink_to(outside)
    pipeline = write(
        project,
        "characters:\n  mara: {description: M, keyframes: {front: key.png}}\n"
        "nodes:\n  a: {kind: i2v, image: {keyframe: mara.front}, prompt: x}\n"
        "  b: {kind: t2v, prompt: x}\n"
        "outputs:\n  b: renders/b.mp4\n",
    )
    errors = errors_of(pipeline)
    assert any(e.startswith("4 ") and "through a symlink" in e for e in errors), errors
    assert any(e.startswith("9 ") and "output 'renders/b.mp4'" in e for e in errors), errors


def test_a_pipeline_that_is_a_symlink_out_does_not_move_the_project(
    project: Path, outside: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The file outside would read a template beside it, if its directory were the project.
    evil = outside / "evil.yaml"
    evil.write_text(
        "version: 1\nname: evil\ntemplates: .\n"
        "nodes:\n  a: {kind: t2v, prompt: {template: secret.txt}}\n"
    )
    (project / "linked.yaml").symlink_to(evil)
    assert cli.run(["plan", str(project / "linked.yaml"), "--json", "-v"]) == 1
    out, err = capsys.readouterr()
    assert SECRET not in out + err
    assert "outside the project directory" in out + err
    assert sorted(p.name for p in outside.iterdir()) == [
        "evil.yaml",
        "presets.yaml",
        "secret.txt",
        "templates",
    ]


def test_a_lockfile_symlinked_outside_is_neither_read_nor_written(
    tmp_path: Path, outside: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = make_project(tmp_path / "p")
    pipeline.with_name("tiny.lock.json").symlink_to(outside / "secret.txt")
    assert cli.run(["plan", str(pipeline), "--backend", "local"]) == 1
    err = capsys.readouterr().err
    assert "the lockfile 'tiny.lock.json' is outside the project" in err
    assert (outside / "secret.txt").read_text() == f"{SECRET}\n"


def test_the_default_store_symlinked_outside_is_refused(
    tmp_path: Path,
    outside: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("SHOTGRAPH_CACHE_DIR")
    pipeline = make_project(tmp_path / "p")
    (outside / "store").mkdir()
    (tmp_path / "p" / ".shotgraph").symlink_to(outside / "store")
    for command in (["plan"], ["run", "--backend", "local", "--plain"]):
        assert cli.run([*command, str(pipeline)]) == 1
        err = capsys.readouterr().err
        assert "the store" in err and "--cache-dir" in err, err
    assert list((outside / "store").iterdir()) == []
    # Chosen by whoever runs shotgraph, a store elsewhere is fine.
    assert cli.run(["plan", str(pipeline), "--cache-dir", str(outside / "store")]) == 0


def test_imports_are_few_and_each_once(project: Path) -> None:
    (project / "presets").mkdir()
    (project / "presets" / "a.yaml").write_text("presets:\n  look: {resolution: 480p}\n")
    pipeline = write(
        project,
        "imports: [presets/a.yaml, ./presets/a.yaml]\nnodes:\n  a: {kind: t2v, prompt: x}\n",
    )
    assert errors_of(pipeline) == [
        "3 ./presets/a.yaml is imported twice (first as imports[0]) | import each preset file once"
    ]
    many = ", ".join(f"presets/{i}.yaml" for i in range(33))
    pipeline = write(project, f"imports: [{many}]\nnodes:\n  a: {{kind: t2v, prompt: x}}\n")
    assert errors_of(pipeline) == [
        "3 33 preset files imported (at most 32) | gather the presets into fewer files"
    ]
