"""``shotgraph init``: scaffold a studio's repository: a first pipeline, its presets and a
template, the schemas its editors read, a ``.gitignore`` for the store, a CI workflow (review
pull requests, render on merge) and a pre-commit configuration. It never overwrites a file
that is there already."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import click

from runner import atomic
from runner.commands.scaffold import (
    FILES,
    gitignore_additions,
    install_spec,
    project_settings,
    write_schemas,
)
from runner.errors import display_path
from runner.resources import data_file


@click.command("init")
@click.argument(
    "directory", type=click.Path(file_okay=False, path_type=Path), default=".", required=False
)
@click.option(
    "--install",
    metavar="SPEC",
    help="What the CI workflow pip-installs (a version, a wheel's URL, git+https://...@tag). "
    "Default: the git URL this shotgraph was installed from, else shotgraph==VERSION.",
)
def init(directory: Path, install: str | None) -> int:
    """Scaffold a studio repository in DIRECTORY (default: here): pipelines/, presets/,
    templates/, schemas/, .gitignore, a GitHub workflow and a pre-commit configuration."""
    directory.mkdir(parents=True, exist_ok=True)
    top = _git_top(directory)
    if top is None and shutil.which("git"):
        # The project is the git work tree: its files may refer to each other inside it.
        subprocess.run(["git", "init", "-q", str(directory)], check=False)
        click.echo(f"initialised a git repository in {display_path(directory)}")
    written, kept = [], []
    texts = {
        dest: data_file(f"scaffold/{src}").read_text(encoding="utf-8")
        for dest, src in FILES.items()
    }
    spec = install or install_spec()
    texts[".github/workflows/shotgraph.yml"] = texts[".github/workflows/shotgraph.yml"].replace(
        "@INSTALL@", spec
    )
    settings_file, settings_text = project_settings()
    texts[settings_file] = settings_text
    for dest, text in texts.items():
        path = directory / dest
        if path.exists() and dest == ".gitignore":
            # The repository's own: the store must stay out of git all the same.
            existing = path.read_text(encoding="utf-8", errors="replace")
            added = gitignore_additions(existing, text)
            if added:
                ending = "" if existing.endswith("\n") or not existing else "\n"
                atomic.write_text(path, existing + ending + added)
                click.echo(f"added to {display_path(path)}: {' '.join(_patterns(added))}")
                continue
        if path.exists():
            kept.append(path)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_text(path, text)
        written.append(path)
    written += write_schemas(directory / "schemas")
    for path in written:
        click.echo(f"wrote {display_path(path)}")
    for path in kept:
        click.echo(f"kept  {display_path(path)} (it was there already)")
    if top is not None and top != directory.resolve():
        # GitHub and pre-commit read these at the repository's root only.
        click.echo(
            f"note: {display_path(directory)} is inside the repository at {display_path(top)}: "
            "GitHub runs workflows from its .github/workflows/ and pre-commit reads its "
            ".pre-commit-config.yaml; move the two files there (and prefix the workflow's "
            "paths with this directory), or run init at the root"
        )
    workflow = directory / ".github/workflows/shotgraph.yml"
    if workflow in written and "file:" in spec.split("/")[0]:  # git+file:///..., file:///...
        click.echo(
            f"note: the workflow installs shotgraph from {spec}, a path on this machine that "
            "CI cannot reach: edit SHOTGRAPH_INSTALL there, or run init --install SPEC"
        )
    here = directory.resolve() == Path.cwd().resolve()
    click.echo(
        "next: "
        + ("" if here else f"cd {shlex.quote(display_path(directory))}; ")
        + "shotgraph validate pipelines/example.yaml; "
        "shotgraph run pipelines/example.yaml --backend local (offline, free)"
    )
    return 0


def _git_top(directory: Path) -> Path | None:
    """The work tree ``directory`` lies in, if any (the nearest directory with ``.git``)."""
    here = directory.resolve()
    return next((d for d in (here, *here.parents) if (d / ".git").exists()), None)


def _patterns(lines: str) -> list[str]:
    return [line for line in lines.splitlines() if line and not line.startswith("#")]
