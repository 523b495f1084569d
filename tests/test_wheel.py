"""Install anywhere: the wheel carries the schemas, templates and data, and a studio starts
from an empty directory outside this clone: `shotgraph init`, validate, plan, render the
scaffold with the local backend, and `pre-commit run --all-files` passes there, with the
scaffold's hooks and the ones this repository ships (.pre-commit-hooks.yaml).

One slow test. To stay quick and offline it builds the wheel without build isolation and
installs it with --no-deps into a fresh venv that sees the project venv's packages (its
dependencies) through a .pth line, which adds that directory but not its own .pth files:
the editable install of this clone stays out of sight.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PROJECT_BIN = Path(sys.executable).parent

pytestmark = pytest.mark.slow


def sh(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"{args}:\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stdout + done.stderr
    return done.stdout + done.stderr


def test_the_wheel_installs_anywhere_and_a_studio_starts_from_it(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    outside = tmp_path_factory.mktemp("outside")
    assert ROOT not in outside.parents
    wheels = outside / "wheels"
    sh(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", wheels,
       ROOT, cwd=outside)  # fmt: skip
    (wheel,) = wheels.glob("shotgraph-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in (
        "runner/_bundled/schemas/pipeline.schema.json",
        "runner/_bundled/schemas/presets.schema.json",
        "runner/_bundled/schemas/endpoints/fal-ai/ltx-video-13b-distilled.input.json",
        "runner/_bundled/templates/shot.j2",
        "runner/_bundled/templates/negative/continuity.j2",
        "runner/data/families.yaml",
        "runner/data/presets.yaml",
        "runner/data/scaffold/github-workflow.yml",
    ):
        assert shipped in names, shipped

    # A venv without a pip of its own (ensurepip takes longer than the rest of the
    # install): this pip installs into it (`--python`), as it would into any interpreter.
    venv = outside / "venv"
    sh(sys.executable, "-m", "venv", "--without-pip", venv, cwd=outside)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    (site / "project-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    sh(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "--quiet",
       "--no-deps", wheel, cwd=outside)  # fmt: skip
    where = sh(venv / "bin" / "python", "-c",
               "import runner.resources as r; print(r.__file__); print(r.schemas_dir())",
               cwd=outside)  # fmt: skip
    assert all(str(venv) in line for line in where.split()), where

    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("SHOTGRAPH_CACHE_DIR", None)  # the studio's own .shotgraph/
    shotgraph = venv / "bin" / "shotgraph"
    studio = outside / "studio"
    sh(shotgraph, "init", studio, cwd=outside, env=env)
    sh(shotgraph, "validate", "pipelines/example.yaml", "presets/studio.yaml", cwd=studio, env=env)
    plan = sh(shotgraph, "plan", "pipelines/example.yaml", "--format", "markdown", cwd=studio,
              env=env)  # fmt: skip
    assert "5 of 5 nodes to render" in plan
    run = sh(shotgraph, "run", "pipelines/example.yaml", "--backend", "local", "--plain",
             cwd=studio, env=env)  # fmt: skip
    assert "5 rendered, 0 cached, 0 failed" in run
    assert (studio / "pipelines" / "renders" / "example.mp4").stat().st_size > 0
    assert (studio / "pipelines" / "example.lock.json").is_file()
    assert sh(shotgraph, "schema", "--check", cwd=studio, env=env) == ""

    # pre-commit: the scaffold's hooks, and this repository's own, as `repo: local` (its
    # entries run the installed shotgraph: no network).
    config = yaml.safe_load((studio / ".pre-commit-config.yaml").read_text())
    shipped_hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    for hook in shipped_hooks:
        hook.update(id=f"{hook['id']}-shipped", language="system")
    config["repos"].append({"repo": "local", "hooks": shipped_hooks})
    (studio / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    env["PRE_COMMIT_HOME"] = str(outside / "pre-commit-home")
    pre_commit = PROJECT_BIN / "pre-commit"
    sh("git", "add", "-A", cwd=studio)
    checked = sh(pre_commit, "run", "--all-files", cwd=studio, env=env)
    assert checked.count("Passed") == 4, checked
    # ... and a broken pipeline fails the commit, naming its line.
    broken = studio / "pipelines" / "broken.yaml"
    broken.write_text("version: 1\nname: b\nnodes:\n  a: {kind: t2v, prompt: x, seed: -1}\n")
    sh("git", "add", "-A", cwd=studio)
    done = subprocess.run(
        [str(pre_commit), "run", "--all-files"], cwd=studio, env=env, capture_output=True,
        text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 1 and "pipelines/broken.yaml:4 nodes.a.seed" in done.stdout
