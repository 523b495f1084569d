"""What a pull request shows, as golden files: `plan --format markdown` and `shotgraph diff`
for the demo before and after an edit (one shot's prompt changed, a shot added, one removed).

The locks are the ones a run writes (`build_lock`), from results whose output hashes derive
from each node's key: rendering the demo's 720p clips for real would take the suite's time,
and the review reads only the lock. Regenerate with ``UPDATE_GOLDEN=1``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from runner import cli
from tests.lock_helpers import locked

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"

# The edit a director asks for: a new look for the close-up, a rooftop shot instead of the
# orbit.
EDITS = (
    ("subtle breathing as she looks up at the rain", "a slow blink as thunder rolls"),
    (
        "clips: [street, intro_more, orbit, new_angle]",
        "clips: [street, intro_more, rooftop, new_angle]",
    ),
    (
        "  orbit:\n    kind: multicondition\n",
        "  rooftop:\n    kind: t2v\n    prompt: Wide shot of a rooftop in the rain, city lights below\n"
        "\n  orbit_unused:\n    kind: multicondition\n",
    ),
)


def edited(text: str) -> str:
    for old, new in EDITS:
        assert old in text
        text = text.replace(old, new)
    # The orbit goes: drop its block.
    start = text.index("  orbit_unused:")
    end = text.index("  best_frame:")
    return text[:start] + text[end:]


def shotgraph(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code = cli.run(args)
    out = capsys.readouterr().out
    assert code == 0, out
    return out


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed; UPDATE_GOLDEN=1 rewrites it"


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo in a git repository of its own, the working directory."""
    project = tmp_path / "studio"
    shutil.copytree(ROOT / "pipelines" / "assets", project / "pipelines" / "assets")
    shutil.copy(ROOT / "pipelines" / "demo.yaml", project / "pipelines" / "demo.yaml")
    subprocess.run(["git", "init", "-q", "-b", "main", str(project)], check=True)
    monkeypatch.chdir(project)
    monkeypatch.setenv("SHOTGRAPH_CACHE_DIR", str(tmp_path / "empty-store"))
    return project / "pipelines" / "demo.yaml"


def test_plan_markdown_and_lock_diff_before_and_after_an_edit(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = ["plan", "pipelines/demo.yaml", "--format", "markdown"]
    check_golden("demo.plan.before.md", shotgraph(plan, capsys))
    before = locked(demo)
    shutil.copy(before, demo.with_name("before.lock.json"))
    demo.write_text(edited(demo.read_text()))
    check_golden("demo.plan.after.md", shotgraph(plan, capsys))
    locked(demo)
    diff = ["diff", "pipelines/before.lock.json", "pipelines/demo.lock.json"]
    check_golden("demo.diff.txt", shotgraph(diff, capsys))
    check_golden("demo.diff.md", shotgraph([*diff, "--format", "markdown"], capsys))


def test_diff_between_git_revisions(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def commit(message: str) -> None:
        subprocess.run(["git", "add", "-A"], check=True)
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message],
            check=True,
        )

    locked(demo)
    commit("the demo, rendered")
    demo.write_text(edited(demo.read_text()))
    locked(demo)
    # Against the working tree: every lockfile that differs from main.
    from_tree = shotgraph(["diff", "--rev", "main"], capsys)
    commit("the edit, rendered")
    between = shotgraph(["diff", "--rev", "main~1", "--rev", "main"], capsys)
    one_side = shotgraph(
        ["diff", "main~1:pipelines/demo.lock.json", "pipelines/demo.lock.json"], capsys
    )
    body = (GOLDEN / "demo.diff.txt").read_text().split("\n", 1)[1]
    assert (
        from_tree == "lock diff: main:pipelines/demo.lock.json -> pipelines/demo.lock.json\n" + body
    )
    assert between.split("\n", 1)[1] == body and one_side.split("\n", 1)[1] == body
    assert shotgraph(["diff", "--rev", "main"], capsys) == "no lockfile differs\n"
