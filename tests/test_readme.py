"""The README's examples are real: the files it names exist and say what it shows."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _block_after(command: str) -> tuple[str, str]:
    """The command line shown in a README console block, and what the block shows after it."""
    match = re.search(r"```\n\$ (" + re.escape(command) + r"[^\n]*)\n(.*?)```", README, re.S)
    assert match, f"no console block for {command!r} in README.md"
    return match.group(1), match.group(2)


def test_the_broken_pipeline_of_the_readme_says_what_the_readme_shows() -> None:
    line, shown = _block_after("shotgraph validate pipelines/mistakes/broken.yaml")
    assert (ROOT / line.split()[-1]).is_file()
    done = subprocess.run(
        [sys.executable, "-m", "runner", *line.split()[1:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr == shown


def test_every_pipeline_the_readme_links_or_runs_exists() -> None:
    linked = re.findall(r"\]\((pipelines/[\w./-]+\.yaml)\)", README)
    run = re.findall(r"^\$ shotgraph \w+ (pipelines/[\w./-]+\.yaml)", README, re.M)
    named = set(linked + run)
    assert named and [name for name in sorted(named) if not (ROOT / name).is_file()] == []
