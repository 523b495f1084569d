"""The report of the demo in a real browser: headless Chromium (Debian's package, installed by
`make browser` when missing, from `make test` or from here), driven by Playwright. Every shot card is there,
every clip has a poster and really plays, no console error, no request leaves the folder,
from disk and from a static server on loopback. The screenshot is kept in test-artifacts/
(git-ignored) for a person to look at."""

from __future__ import annotations

import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from runner import cli
from tests.run_helpers import ROOT, start_emulator

pytestmark = pytest.mark.slow
ARTIFACTS = ROOT / "test-artifacts"

playwright = pytest.importorskip("playwright", reason="playwright is in the test extra")
from scripts.report_browser_check import check_report, chromium, ensure_chromium  # noqa: E402

# Missing chromium is installed here (`make browser`: root and apt-get); only a machine that
# cannot have it skips, saying why (pytest prints skip reasons: -rs in pyproject.toml).
if (missing := ensure_chromium()) is not None:
    pytest.skip(f"Debian's chromium cannot be had: {missing}", allow_module_level=True)


def draft_of_the_demo(root: Path) -> Path:
    """pipelines/demo.yaml as it is, but for its preset: short, small clips render in a blink."""
    shutil.copytree(
        ROOT / "pipelines",
        root,
        ignore=shutil.ignore_patterns("renders", "*.lock.json", "*.report", "*.review"),
    )
    (root / ".git").mkdir()
    demo = root / "demo.yaml"
    text = demo.read_text()
    assert "  preset: cinematic-5s\n" in text
    draft = "  preset: fast-preview\n  num_frames: 17\n  frame_rate: 8\n  expand_prompt: false\n"
    demo.write_text(text.replace("  preset: cinematic-5s\n", draft))
    return demo


def test_the_demo_report_in_chromium(tmp_path: Path, render_pool: ProcessPoolExecutor) -> None:
    demo = draft_of_the_demo(tmp_path / "project")
    store = tmp_path / "store"
    with start_emulator(render_pool) as emulator:
        run = ["run", str(demo), "--backend", "local", "--emulator-url", emulator.url]
        assert cli.run([*run, "--cache-dir", str(store), "--plain"]) == 0
    assert cli.run(["report", str(demo), "--cache-dir", str(store)]) == 0
    index = demo.with_name("demo.report") / "index.html"
    nodes = ["street", "intro", "intro_more", "orbit", "best_frame", "new_angle", "cut"]
    with chromium() as browser:  # one browser; each check in a fresh context of its own
        found = {
            how: check_report(index, ARTIFACTS / shot, http=how == "http", browser=browser)
            for how, shot in (("disk", "report-demo.png"), ("http", "report-demo-http.png"))
        }
    for how, findings in found.items():
        shot = findings.screenshot
        assert findings.problems == [], how
        assert findings.cards == [f"shot-{name}" for name in nodes]
        # each clip of the sheet (the frame is a still) and the cut on top
        assert sorted(v["shot"] for v in findings.videos) == sorted(
            ["cut", "street", "intro", "intro_more", "orbit", "new_angle", "cut"]
        )
        assert Path(shot).stat().st_size > 10_000
