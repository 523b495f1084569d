"""`shotgraph report`: the folder it writes, what each card says and where it comes from,
escaping of untrusted text, posters cached in the store, the comparison with another lock."""

from __future__ import annotations

import html
import re
import subprocess
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from runner import cli
from runner.report.media import POSTERS, prune_posters
from runner.store import Store
from tests.run_helpers import PIPELINE, make_project, start_emulator

HOSTILE = '</p><script>alert("pwned")</script><img src=x onerror=alert(1)> "quoted" & more'
# The tiny demo, with two takes of the street and a gate on the orbit (the cut waits for it).
REVIEWED = PIPELINE.replace(
    "  street: {kind: t2v, prompt: {template: establishing.j2, vars: {place: a wet street}}}",
    "  street: {kind: t2v, takes: 2, prompt: {template: establishing.j2, vars: {place: a wet street}}}",
).replace(
    "video: {motion: orbit}, prompt: {template: motion.j2}}",
    "video: {motion: orbit}, prompt: {template: motion.j2}, gate: true}",
)


def cards(page: str) -> list[str]:
    return re.findall(r'<article class="card [^"]*" id="shot-([^"]+)"', page)


def status_of(page: str, name: str) -> str:
    found = re.search(
        rf'id="shot-{re.escape(name)}">.*?<span class="badge status">([^<]+)<', page, re.S
    )
    assert found is not None, name
    return found.group(1)


def report(pipeline: Path, store: Path, *extra: str) -> str:
    args = ["report", str(pipeline), "--cache-dir", str(store), "--backend", "local", *extra]
    assert cli.run(args) == 0
    return (pipeline.with_name(f"{pipeline.stem}.report") / "index.html").read_text()


def test_a_pipeline_never_run_has_a_report_of_what_is_planned(tmp_path: Path) -> None:
    pipeline = make_project(tmp_path / "p", text=REVIEWED)
    store = tmp_path / "store"
    page = report(pipeline, store)
    assert cards(page) == [
        "street", "street#1", "street#2", "intro", "intro_more", "orbit",
        "best_frame", "new_angle", "cut",
    ]  # fmt: skip
    assert status_of(page, "intro") == "planned"
    assert status_of(page, "cut") == "waiting for approval"
    assert "waiting for approval of orbit (renders first)" in page
    assert "not rendered" in page and "<video" not in page
    assert not store.exists()  # a report never creates a store
    folder = pipeline.with_name("tiny.report")
    assert (folder / "assets" / "report.css").is_file()
    # nothing on the page reaches outside its folder: no scheme, no absolute path
    refs = re.findall(r'(?:src|href|poster)="([^"]+)"', page)
    assert refs and all(not re.match(r"[a-z]+:|/", ref) for ref in refs)
    assert "<script" not in page


def test_untrusted_text_is_escaped_everywhere(tmp_path: Path) -> None:
    hostile = PIPELINE.replace(
        "  street: {kind: t2v, prompt: {template: establishing.j2, vars: {place: a wet street}}}",
        f"  street: {{kind: t2v, description: '{HOSTILE.replace(chr(39), '')}', prompt: {{inline: 'Wide shot. {{{{ x }}}}', vars: {{x: '{HOSTILE}'}}}}}}",
    )
    pipeline = make_project(tmp_path / "p", text=hostile)
    pipeline.with_name("tiny.review").write_text(
        f'street rejected={"a" * 64} note={html.unescape("&quot;")}<script>alert(2)</script>"\n'
    )
    page = report(pipeline, tmp_path / "store")
    assert (
        "<script" not in page
        and "<img" not in page
        and "onerror=alert" not in page.replace("onerror=alert(1)&gt;", "")
    )
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in page
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page  # the note, escaped too


@pytest.mark.slow
def test_a_rendered_pipeline_shows_media_status_takes_and_a_comparison(
    tmp_path: Path, render_pool: ProcessPoolExecutor
) -> None:
    root = tmp_path / "p"
    pipeline = make_project(root, text=REVIEWED)
    store = tmp_path / "store"

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=root, check=True, capture_output=True,
        )  # fmt: skip

    (root / ".git").rmdir()
    git("init", "-q")
    with start_emulator(render_pool) as emulator:
        run = ["run", str(pipeline), "--backend", "local", "--emulator-url", emulator.url]
        assert cli.run([*run, "--cache-dir", str(store), "--plain"]) == 0
        page = report(pipeline, store)
        assert status_of(page, "street") == "rendered"
        assert status_of(page, "cut") == "waiting for approval"
        # takes side by side inside their node's card, the used one marked
        assert "2 takes · take 1 is used" in page
        assert re.search(r'class="card status-rendered picked" id="shot-street#1"', page)
        media = sorted(p.name for p in (pipeline.with_name("tiny.report") / "media").iterdir())
        assert len([m for m in media if m.endswith(".mp4")]) == 6  # 2 takes (1 is street), 4 shots
        assert len([m for m in media if m.endswith(".jpg")]) == 6  # a poster for each clip
        assert [m for m in media if m.endswith(".png")]  # the frame node's still
        assert page.count("<video") == 6 + 1  # each clip; the take the node uses shows twice
        posters = sorted((store / "posters").iterdir())
        assert len(posters) == 6
        # a second report reuses the posters kept in the store (by the clip's hash)
        stamps = [p.stat().st_mtime_ns for p in posters]
        again = report(pipeline, store)
        assert [p.stat().st_mtime_ns for p in sorted((store / "posters").iterdir())] == stamps
        assert status_of(again, "street") == "rendered"

        git("add", "-A")
        git("commit", "-qm", "first cut")
        pipeline.write_text(REVIEWED.replace("action: ACTION", "action: a slow smile"))
        assert cli.run([*run, "--cache-dir", str(store), "--plain"]) == 0
        compared = report(pipeline, store, "--against", "HEAD")
    changed = re.findall(r'<article class="compared (\w+)" id="changed-([^"]+)"', compared)
    # the shot whose prompt changed and what is made from it; the cut, which waits behind
    # the gate, was never in the lock: new there
    assert changed == [
        ("changed", "best_frame"), ("added", "cut"), ("changed", "intro"),
        ("changed", "intro_more"), ("changed", "new_angle"),
    ]  # fmt: skip
    intro = compared[compared.index('id="changed-intro"') :]
    intro = intro[: intro.index("</article>")]
    assert "<del>subtle breathing. </del><ins>a slow smile. </ins>" in intro
    assert intro.count("<video") == 2  # before and now, side by side
    assert "+0.00 USD" in intro and "Compared with HEAD" in compared
    assert status_of(compared, "intro") == "rendered" and status_of(compared, "street") == "cached"


def test_gc_drops_the_posters_of_clips_the_store_no_longer_has(tmp_path: Path) -> None:
    with Store.open(tmp_path / "store") as store:
        clip = store.tmp_dir() / "clip.mp4"
        clip.write_bytes(b"a clip")
        kept = store.put_file(clip, move=True)
        posters = store.root / POSTERS
        posters.mkdir()
        for name in (kept.sha256, "f" * 64, "stray"):
            (posters / f"{name}.jpg").write_bytes(b"jpeg")
        assert prune_posters(store, dry_run=True) == 2
        assert len(list(posters.iterdir())) == 3
        assert prune_posters(store) == 2
        assert [p.name for p in posters.iterdir()] == [f"{kept.sha256}.jpg"]
