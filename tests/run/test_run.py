"""`shotgraph run` end to end against the real emulator on loopback: cache, early cutoff,
failures, budget, frozen, replay, outputs."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import av
import pytest

from runner import cli
from runner.ltx.schema import schema_digest
from runner.store import Store, hashcache
from tests.fake_fal import FakeFal
from tests.run.fake_run import run as fake_run
from tests.run.fake_run import steps_of
from tests.run_helpers import (
    GENERATION_NODES,
    lock_of,
    make_project,
    output_hashes,
    rendered,
    start_emulator,
)
from tests.run_helpers import (
    run_local as run,
)


def test_first_run_renders_all_then_nothing(
    tmp_path: Path, render_pool: ProcessPoolExecutor, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = make_project(tmp_path / "p")
    store = tmp_path / "store"
    with start_emulator(render_pool) as emulator:
        assert run(pipeline, emulator.url, store) == 0
        assert rendered(store) == GENERATION_NODES | {"best_frame", "cut"}
        first = emulator.stats()["total_submissions"]
        assert first == len(GENERATION_NODES)
        lock_text = pipeline.with_name("tiny.lock.json").read_text()
        assert run(pipeline, emulator.url, store) == 0  # how fast: benchmarks/unit_speeds.py
        assert emulator.stats()["total_submissions"] == first  # nothing sent again
        assert rendered(store) == set()
        # stable: no timestamps, the same bytes after a rerun
        assert pipeline.with_name("tiny.lock.json").read_text() == lock_text
    out = capsys.readouterr().out
    assert "0 rendered, 7 cached" in out
    cut = tmp_path / "p" / "renders" / "cut.mp4"
    with av.open(str(cut)) as container:
        stream = container.streams.video[0]
        assert sum(1 for _ in container.decode(stream)) == 4 * 9
    assert (tmp_path / "p" / "renders" / "best.png").read_bytes()[:4] == b"\x89PNG"
    lock = lock_of(pipeline)
    assert set(lock.nodes) == GENERATION_NODES | {"best_frame", "cut"}
    intro = lock.nodes["intro"]
    assert intro.request is not None and intro.request["image_url"].startswith("sha256:")
    assert intro.request["seed"] == intro.seed == intro.returned_seed
    extend = lock.nodes["intro_more"].request
    assert extend is not None and extend["video"]["video_url"] == "sha256:" + intro.output.sha256


def test_edits_rerun_exactly_what_they_affect(tmp_path: Path) -> None:
    fal = FakeFal()  # the emulator is not the point: the keys are
    with Store.open(tmp_path / "store") as store:

        def rerun(**project: str) -> set[str]:
            _, steps = steps_of(tmp_path / "p", **project)
            result, _ = fake_run(steps, store, fal)
            assert result.ok, result.failed
            return result.rendered

        assert rerun() == GENERATION_NODES | {"best_frame", "cut"}
        # a prompt edit: that node and its descendants
        assert rerun(action="a quick glance up") == {
            "intro",
            "intro_more",
            "best_frame",
            "new_angle",
            "cut",
        }
        # a template edit that renders the same text: nothing
        templates = tmp_path / "p" / "templates"
        templates.mkdir()
        source = (Path(__file__).parents[2] / "templates" / "continue.j2").read_text()
        (templates / "continue.j2").write_text(
            "{# our copy, reflowed #}\n"
            + source.replace("same place, same light.", "same place,\n    same light.")
        )
        assert rerun(action="a quick glance up") == set()
        # a keyframe's bytes: the shots that use it, and what follows from them
        keyframe = tmp_path / "p" / "assets" / "characters" / "mara" / "three_quarter.png"
        keyframe.write_bytes(keyframe.with_name("medium_shot.png").read_bytes())
        assert rerun(action="a quick glance up") == {
            "intro",
            "intro_more",
            "best_frame",
            "new_angle",
            "cut",
        }
    assert len(fal.jobs) == 5 + 3 + 3  # frame and stitch are local


def test_failed_node_fails_only_its_descendants(
    tmp_path: Path, render_pool: ProcessPoolExecutor, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = make_project(tmp_path / "p")
    store = tmp_path / "store"
    faults = [
        {
            "kind": "fail",
            "prompt_contains": "subtle breathing",
            "times": None,
            "message": "the GPU caught fire",
        }
    ]
    with start_emulator(render_pool) as emulator:
        emulator.set_faults(faults)
        code = run(pipeline, emulator.url, store)
    captured = capsys.readouterr()
    assert code == 4  # a render failed: running again may help
    assert "failed intro: fal job" in captured.err and "the GPU caught fire" in captured.err
    assert rendered(store) == {"street", "orbit"}
    assert "2 rendered, 0 cached, 1 failed, 4 skipped" in captured.out
    assert not pipeline.with_name("tiny.lock.json").exists()


def test_budget_refuses_to_start(
    tmp_path: Path, render_pool: ProcessPoolExecutor, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = make_project(tmp_path / "p")
    with start_emulator(render_pool) as emulator:
        assert run(pipeline, emulator.url, tmp_path / "store", "--budget", "0.10") == 5
        assert emulator.stats()["total_submissions"] == 0
    assert "exceeds the budget $0.10" in capsys.readouterr().err


def test_frozen_fails_when_the_pipeline_changed(
    tmp_path: Path, render_pool: ProcessPoolExecutor, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = make_project(tmp_path / "p")
    store = tmp_path / "store"
    with start_emulator(render_pool) as emulator:
        assert run(pipeline, emulator.url, store, "--frozen") == 1  # no lockfile yet
        assert run(pipeline, emulator.url, store) == 0
        assert run(pipeline, emulator.url, store, "--frozen") == 0
        make_project(tmp_path / "p", action="a wink")
        assert run(pipeline, emulator.url, store, "--frozen") == 1
    assert "no longer matches" in capsys.readouterr().err


def test_replay_on_a_fresh_store_reproduces_every_output(
    tmp_path: Path, render_pool: ProcessPoolExecutor
) -> None:
    pipeline = make_project(tmp_path / "p")
    lockfile = pipeline.with_name("tiny.lock.json")
    with start_emulator(render_pool) as emulator:
        assert run(pipeline, emulator.url, tmp_path / "store") == 0
        locked = output_hashes(pipeline)
        before = lockfile.read_text()
        (tmp_path / "p" / "renders" / "cut.mp4").unlink()
        code = cli.run(
            [
                "replay",
                str(lockfile),
                "--emulator-url",
                emulator.url,
                "--cache-dir",
                str(tmp_path / "fresh"),
                "--plain",
            ]
        )
        assert code == 0
        assert rendered(tmp_path / "fresh") == set(locked)
    assert lockfile.read_text() == before
    assert (tmp_path / "p" / "renders" / "cut.mp4").exists()


def test_replay_warns_when_fals_schema_changed_since_the_lock(
    tmp_path: Path, render_pool: ProcessPoolExecutor, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = make_project(tmp_path / "p")
    lockfile = pipeline.with_name("tiny.lock.json")
    store = tmp_path / "store"
    with start_emulator(render_pool) as emulator:
        assert run(pipeline, emulator.url, store) == 0
        lock = json.loads(lockfile.read_text())
        intro = lock["nodes"]["intro"]
        assert intro["schema_sha256"] == schema_digest(intro["endpoint"])
        capsys.readouterr()
        args = ["replay", str(lockfile), "--emulator-url", emulator.url, "--cache-dir", str(store)]
        assert cli.run([*args, "--plain"]) == 0
        assert "schema" not in capsys.readouterr().err  # unchanged: nothing to say
        # As if fal's OpenAPI changed and schemas/endpoints/ was refreshed since the run.
        text = lockfile.read_text().replace(intro["schema_sha256"], "0" * 64)
        lockfile.write_text(text)
        assert cli.run([*args, "--plain"]) == 0
    err = capsys.readouterr().err
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.lstrip().startswith('"intro"'))
    assert f"tiny.lock.json:{line} nodes.intro.schema_sha256: warning: fal's schema of" in err
    assert f"{intro['endpoint']} changed since this lock was written" in err
    same = [n for n, e in lock["nodes"].items() if e.get("schema_sha256") == intro["schema_sha256"]]
    assert err.count("schema_sha256: warning") == len(same)


def test_plan_says_why(
    tmp_path: Path, render_pool: ProcessPoolExecutor, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = make_project(tmp_path / "p")
    store = tmp_path / "store"
    with start_emulator(render_pool) as emulator:
        assert run(pipeline, emulator.url, store) == 0
    capsys.readouterr()
    make_project(tmp_path / "p", action="a wink")
    assert (
        cli.run(["plan", str(pipeline), "--backend", "local", "--cache-dir", str(store), "--json"])
        == 0
    )
    rows = {
        r["node"]: (r["status"], r["reason"]) for r in json.loads(capsys.readouterr().out)["nodes"]
    }
    assert rows["street"] == ("cached", "")
    assert rows["intro"] == ("render", "request changed")
    assert rows["intro_more"] == ("render", "upstream changed")
    assert (
        cli.run(
            ["plan", str(pipeline), "--backend", "local", "--cache-dir", str(tmp_path / "empty")]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "render: cache entry missing" in out and "render: request changed" in out


def test_cached_inputs_reach_another_emulator(
    tmp_path: Path, render_pool: ProcessPoolExecutor, capsys: pytest.CaptureFixture[str]
) -> None:
    """A cached upstream result made by one emulator (the run's own, on a port that is gone)
    reaches another one: uploaded again from the store, not passed by its dead URL."""
    pipeline = make_project(tmp_path / "p")
    store = tmp_path / "store"
    common = ["--backend", "local", "--cache-dir", str(store), "--plain"]
    assert cli.run(["run", str(pipeline), *common]) == 0
    text = pipeline.read_text().replace(
        "{template: continue.j2}", "{template: continue.j2, vars: {action: a sigh}}"
    )
    pipeline.write_text(text)
    with start_emulator(render_pool) as emulator:
        code = cli.run(["run", str(pipeline), *common, "--emulator-url", emulator.url])
        assert code == 0, capsys.readouterr().err
    assert rendered(store) == {"intro_more", "best_frame", "new_angle", "cut"}


def test_a_422_from_fal_points_at_the_pipeline_key(tmp_path: Path) -> None:
    """fal's 422 ``loc`` is translated back to where the value was written: the node, its
    preset, or the pipeline defaults (fal may reject what its published schema allows)."""
    from runner.commands.pipeline_run import _issue_describer
    from runner.compile.check import check_pipeline
    from runner.fal import ValidationIssue

    pipeline = make_project(tmp_path / "p")
    compiled = check_pipeline(pipeline, backend="local").require()
    describe = _issue_describer(compiled)
    frames = ValidationIssue(("body", "num_frames"), "Input should be less than 9")
    assert describe(compiled.steps["intro"], frames).endswith("tiny.yaml:5 defaults.num_frames)")
    strength = ValidationIssue(("body", "video", "strength"), "too strong")
    where = describe(compiled.steps["intro_more"], strength)
    assert "tiny.yaml:23 nodes.intro_more.video.strength" in where


def test_gc_clears_the_local_backends_state_and_runs_still_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = make_project(tmp_path / "p")
    store = tmp_path / "store"
    common = ["--backend", "local", "--cache-dir", str(store), "--plain"]
    assert cli.run(["run", str(pipeline), *common]) == 0
    assert any((store / "emulator").iterdir())
    assert (
        cli.run(
            [
                "cache",
                "gc",
                "--cache-dir",
                str(store),
                "--project",
                str(tmp_path / "p"),
                "--grace",
                "0",
            ]
        )
        == 0
    )
    assert [p.name for p in (store / "emulator").iterdir()] == ["in-use.lock"]
    assert cli.run(["run", str(pipeline), *common]) == 0  # still all cached
    assert rendered(store) == set()
    make_project(tmp_path / "p", action="a long look")  # the keyframe is uploaded again
    assert cli.run(["run", str(pipeline), *common]) == 0, capsys.readouterr().err
    assert rendered(store) == {"intro", "intro_more", "best_frame", "new_angle", "cut"}


def test_plan_and_run_remember_input_hashes_in_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = make_project(tmp_path / "p")
    long_ago = time.time() - 3600  # not racy: files settled before the run
    for asset in (tmp_path / "p" / "assets").rglob("*.*"):
        os.utime(asset, (long_ago, long_ago))
    store = tmp_path / "store"
    read: list[Path] = []
    real = hashcache.hash_path
    monkeypatch.setattr(hashcache, "hash_path", lambda path: read.append(path) or real(path))

    plan = ["plan", str(pipeline), "--backend", "local", "--cache-dir", str(store)]
    assert cli.run(plan) == 0
    assert read == []  # no store yet: hashed directly, and none created
    assert not store.exists()
    Store.open(store).close()
    assert cli.run(plan) == 0
    inputs = len(read)
    assert inputs == 3  # two keyframes and a motion clip, once each
    assert cli.run(plan) == 0
    assert len(read) == inputs  # remembered: unchanged files are not read again
    capsys.readouterr()
