"""What ``init`` scaffolds and ``schema`` writes: the files of a studio repository, the
schemas its editors read, how its CI installs shotgraph. Shared by both commands."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

from runner import __version__, atomic
from runner.pipeline.settings import SETTINGS_FILE
from runner.resources import data_file, schemas_dir

SCHEMAS = ("pipeline.schema.json", "presets.schema.json")


def stale_schemas(target: Path) -> dict[str, str]:
    """The shipped schemas that ``target`` lacks or holds another version of, by name, with
    the text that belongs there."""
    stale = {}
    for name in SCHEMAS:
        text = (schemas_dir() / name).read_text(encoding="utf-8")
        path = target / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale[name] = text
    return stale


def write_schemas(target: Path) -> list[Path]:
    """Copy the shipped schemas into ``target``; the files that changed."""
    target.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, text in stale_schemas(target).items():
        atomic.write_text(target / name, text)
        changed.append(target / name)
    return changed


# What the scaffold holds: destination (relative to the repository) <- file of the package.
FILES = {
    "pipelines/example.yaml": "example.yaml",
    "presets/studio.yaml": "studio.yaml",
    "templates/house.j2": "house.j2",
    ".gitignore": "gitignore",
    ".pre-commit-config.yaml": "pre-commit-config.yaml",
    ".github/workflows/shotgraph.yml": "github-workflow.yml",
}


def gitignore_additions(existing: str, ours: str) -> str:
    """The lines of the scaffold's ``.gitignore`` (``ours``) whose patterns ``existing``
    lacks, each with the comment above it; empty when it has them all."""
    have = {line.strip() for line in existing.splitlines()}
    added: list[str] = []
    comments: list[str] = []
    for line in ours.splitlines():
        if line.startswith("#") or not line.strip():
            comments.append(line)
            continue
        if line.strip() not in have:
            added += [*comments, line]
        comments = []
    return "".join(f"{line}\n" for line in added)


def project_settings() -> tuple[str, str]:
    """The project settings file to scaffold, as (path, text): ``shotgraph.toml`` with its
    ``[store]`` table commented out, for the team to fill in with its bucket (until then,
    each machine keeps its own store). The workflow lists it in ``paths:``."""
    return SETTINGS_FILE, data_file("scaffold/shotgraph.toml").read_text(encoding="utf-8")


def install_spec() -> str:
    """How CI should install this shotgraph: the git URL it came from, when pip recorded one
    (PEP 610), else this version by name from the team's package index."""
    try:
        recorded = metadata.distribution("shotgraph").read_text("direct_url.json")
        origin = json.loads(recorded or "{}")
    except (metadata.PackageNotFoundError, ValueError):
        origin = {}
    vcs = origin.get("vcs_info")
    if isinstance(vcs, dict) and vcs.get("vcs") == "git" and isinstance(origin.get("url"), str):
        return f"git+{origin['url']}@{vcs.get('commit_id') or vcs.get('requested_revision')}"
    return f"shotgraph=={__version__}"
