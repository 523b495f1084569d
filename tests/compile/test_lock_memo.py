"""The lockfile a no-op run need not build again (runner.compile.lock_memo): skipped only
while the memo, every node's result, the outputs and the file itself are what they were."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from runner import cli
from runner import plan as plan_module
from runner.commands import pipeline_run
from runner.compile import lock_memo
from runner.compile.check import check_pipeline
from runner.compile.lock_memo import entries_of
from runner.lock import Lock, lock_path, parse_lock, read_lock
from runner.store import Store
from tests.helpers import HEAD, project
from tests.record_helpers import cache_every_node

BODY = """nodes:
  shot: {kind: i2v, image: {keyframe: mara.front}, prompt: a woman breathing}
  more: {kind: extend, video: {from: shot}, prompt: she smiles}
outputs:
  more: renders/more.mp4
"""


@pytest.fixture
def pipeline(tmp_path: Path) -> Path:
    path = project(tmp_path / "proj") / "p.yaml"
    path.write_text(HEAD + BODY)
    return path


@pytest.fixture
def store(tmp_path: Path, pipeline: Path) -> Path:
    root = tmp_path / "store"
    cache_every_node(pipeline, root, b"first")
    return root


class Builds:
    """Counts the locks the run command builds."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = pipeline_run.build_lock

        def counted(*args: object, **kwargs: object) -> Lock:
            self.count += 1
            return real(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(pipeline_run, "build_lock", counted)


def run(pipeline: Path, store: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """``shotgraph run``; the line it ends with about the lockfile."""
    args = ["run", str(pipeline), "--backend", "local", "--cache-dir", str(store), "--plain"]
    assert cli.run(args) == 0
    said = capsys.readouterr()
    return [line for line in (said.out + said.err).splitlines() if "lockfile" in line][-1]


@pytest.fixture
def builds(
    pipeline: Path, store: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Builds:
    """After a first run, which writes the lock: the second builds nothing."""
    counted = Builds(monkeypatch)
    assert "unchanged" not in run(pipeline, store, capsys)
    assert counted.count == 1
    assert "unchanged" in run(pipeline, store, capsys)
    assert counted.count == 1
    return counted


def test_a_no_op_run_leaves_the_lock_as_it_is_without_building_it(
    pipeline: Path, store: Path, builds: Builds, capsys: pytest.CaptureFixture[str]
) -> None:
    before = lock_path(pipeline).read_bytes()
    assert "unchanged" in run(pipeline, store, capsys)
    assert builds.count == 1 and lock_path(pipeline).read_bytes() == before


def test_a_lockfile_edited_by_hand_is_written_again(
    pipeline: Path, store: Path, builds: Builds, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = lock_path(pipeline)
    right = lock.read_bytes()
    lock.write_bytes(right.replace(b'"seed": ', b'"seed": 1'))
    assert "unchanged" not in run(pipeline, store, capsys)
    assert builds.count == 2 and lock.read_bytes() == right


def test_a_lockfile_replaced_by_the_same_bytes_is_compared_again(
    pipeline: Path, store: Path, builds: Builds, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = lock_path(pipeline)
    copy = lock.with_name("copy")
    copy.write_bytes(lock.read_bytes())
    os.replace(copy, lock)
    assert "unchanged" in run(pipeline, store, capsys)
    assert builds.count == 2


def test_a_deleted_lockfile_is_written(
    pipeline: Path, store: Path, builds: Builds, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = lock_path(pipeline)
    right = lock.read_bytes()
    lock.unlink()
    assert "unchanged" not in run(pipeline, store, capsys)
    assert lock.read_bytes() == right


def test_another_result_in_the_store(
    pipeline: Path, store: Path, builds: Builds, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rendered again elsewhere: another output, and another request id."""
    cache_every_node(pipeline, store, b"second", request_id="req-again")
    assert "unchanged" not in run(pipeline, store, capsys)
    entry = read_lock(lock_path(pipeline)).nodes["shot"]
    assert entry.request_id == "req-again" and builds.count == 2


def test_a_result_with_another_request_id_only(
    pipeline: Path, store: Path, builds: Builds, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same bytes: the lock keeps the request that rendered them (and is compared)."""
    cache_every_node(pipeline, store, b"first", request_id="req-again")
    assert "unchanged" in run(pipeline, store, capsys)
    assert read_lock(lock_path(pipeline)).nodes["shot"].request_id == "req-shot"
    assert builds.count == 2


def test_the_pipeline_text(
    pipeline: Path, store: Path, builds: Builds, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline.write_text(HEAD + BODY.replace("renders/more.mp4", "renders/other.mp4"))
    assert "unchanged" not in run(pipeline, store, capsys)
    assert read_lock(lock_path(pipeline)).outputs == {"more": "renders/other.mp4"}
    assert builds.count == 2


class Reads:
    """Counts the lockfiles the plan parses (whole, or only some entries: ``entries``)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        self.entries: list[list[str]] = []
        real, parse = plan_module.read_lock, plan_module.parse_lock

        def counted(path: Path) -> Lock:
            self.count += 1
            return real(path)

        def parsed(text: str, path: Path) -> Lock:
            self.count += 1
            lock = parse(text, path)
            self.entries.append(sorted(lock.nodes))
            return lock

        monkeypatch.setattr(plan_module, "read_lock", counted)
        monkeypatch.setattr(plan_module, "parse_lock", parsed)


def plan(pipeline: Path, store: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    args = ["plan", str(pipeline), "--backend", "local", "--json", "--cache-dir", str(store)]
    code = cli.run(args)
    said = capsys.readouterr()
    assert code == 0, said.err
    return {row["node"]: row["reason"] or row["status"] for row in json.loads(said.out)["nodes"]}


def test_a_plan_of_cached_nodes_reads_no_lockfile_a_run_left(
    pipeline: Path,
    store: Path,
    builds: Builds,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    reads = Reads(monkeypatch)
    assert plan(pipeline, store, capsys) == {"shot": "cached", "more": "cached"}
    assert reads.count == 0
    compiled = check_pipeline(pipeline, backend="local").require()
    with Store.open(store) as opened:
        assert opened.delete_result(compiled.steps["more"].key)
    # A node to render: its reason comes from the lock, read now.
    assert plan(pipeline, store, capsys) == {"shot": "cached", "more": "cache entry missing"}
    assert reads.count == 1


def test_a_plan_reads_a_lockfile_touched_since(
    pipeline: Path,
    store: Path,
    builds: Builds,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A damaged lockfile stops the plan as it always did, even with every node cached."""
    reads = Reads(monkeypatch)
    lock = lock_path(pipeline)
    lock.write_text(lock.read_text().replace('"lock_version": 1', '"lock_version": 99'))
    args = ["plan", str(pipeline), "--backend", "local", "--cache-dir", str(store)]
    assert cli.run(args) == 1
    assert reads.count == 1 and "lock" in capsys.readouterr().err


def test_a_plan_after_an_edit_reads_the_entries_it_needs_and_says_the_same(
    pipeline: Path,
    store: Path,
    builds: Builds,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An edit upstream: the plan reads the lock's entries of the nodes to render and of
    their inputs only, and gives the reasons that reading it whole gives."""
    pipeline.write_text(HEAD + BODY.replace("a woman breathing", "a woman sighing"))
    reads = Reads(monkeypatch)
    expected = {"shot": "request changed", "more": "upstream changed"}
    assert plan(pipeline, store, capsys) == expected
    assert reads.entries == [["more", "shot"]] and reads.count == 1
    pipeline.write_text(HEAD + BODY.replace("she smiles", "she frowns"))
    assert plan(pipeline, store, capsys) == {"shot": "cached", "more": "request changed"}
    assert reads.entries[-1] == ["more", "shot"]  # "more" and the input it reads
    lock = lock_path(pipeline)
    os.utime(lock, ns=(lock.stat().st_atime_ns, lock.stat().st_mtime_ns + 10**9))
    pipeline.write_text(HEAD + BODY.replace("a woman breathing", "a woman sighing"))
    assert plan(pipeline, store, capsys) == expected  # read whole: not known good now
    assert reads.count == 3 and len(reads.entries) == 2


def test_the_entries_of_a_lock_are_found_by_their_lines_or_not_at_all(
    pipeline: Path, store: Path, builds: Builds
) -> None:
    """Entries found in a lock as a run writes it are the ones a whole read gives; in any
    other layout (or for a node it lacks), nothing is found and the lock is read whole."""
    lock = lock_path(pipeline)
    whole = read_lock(lock)
    found = entries_of(lock, ["more"])
    assert found is not None
    assert parse_lock(found, lock) == replace(whole, nodes={"more": whole.nodes["more"]})
    assert entries_of(lock, ["more", "elsewhere"]) is None
    document = json.loads(lock.read_text())
    for layout in (json.dumps(document, indent=2), json.dumps(document)):
        lock.write_text(layout)
        assert entries_of(lock, ["more"]) is None


def test_a_settled_lock_is_told_by_its_stat_and_any_write_to_it_shows(
    pipeline: Path,
    store: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A lock the note found settled is vouched for by its stat, without reading it; any
    write since (the same bytes, or others of the same size) is seen, and it is read."""
    counted = Builds(monkeypatch)
    assert "unchanged" not in run(pipeline, store, capsys)  # noted moments after writing
    hashed: list[Path] = []
    file_state = lock_memo._file_state

    def counting(lock_file: Path) -> Any:
        hashed.append(lock_file)
        return file_state(lock_file)

    monkeypatch.setattr(lock_memo, "_file_state", counting)
    lock = lock_path(pipeline)
    assert lock_memo.lock_known_good(store, lock) and len(hashed) == 1  # not settled: read
    monkeypatch.setattr(lock_memo, "RACY_WINDOW", 0.0)  # settled from here on
    assert "unchanged" in run(pipeline, store, capsys)  # the run notes it settled
    hashed.clear()
    assert lock_memo.lock_known_good(store, lock) and hashed == []
    assert "unchanged" in run(pipeline, store, capsys) and hashed == []
    assert counted.count == 1
    right = lock.read_bytes()
    for written in (right, right.replace(b"breathing", b"breathinG")):
        lock.write_bytes(written)
        assert lock.stat().st_size == len(right) and b"breathing" in right
        assert not lock_memo.lock_known_good(store, lock) and hashed
    assert "unchanged" not in run(pipeline, store, capsys)
    assert lock.read_bytes() == right and counted.count == 2


def test_a_lock_rewritten_while_its_note_is_renewed_is_not_vouched_for(
    pipeline: Path,
    store: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A run that finds the lock right and notes it settled notes the file it checked: one
    written in between (a checkout at that moment) is not vouched for by the new note."""
    run(pipeline, store, capsys)  # noted moments after writing: not settled
    lock = lock_path(pipeline)
    right = lock.read_bytes()
    monkeypatch.setattr(lock_memo, "RACY_WINDOW", 0.0)
    settled = lock_memo._settled

    def rewritten_meanwhile(stat: list[int]) -> bool:
        found = settled(stat)
        if found and lock.read_bytes() == right:
            lock.write_bytes(right.replace(b"breathing", b"breathinG"))
        return found

    monkeypatch.setattr(lock_memo, "_settled", rewritten_meanwhile)
    run(pipeline, store, capsys)
    monkeypatch.setattr(lock_memo, "_settled", settled)
    assert lock.read_bytes() != right  # the rewrite, as the other writer left it
    assert not lock_memo.lock_known_good(store, lock)
    assert "unchanged" not in run(pipeline, store, capsys)
    assert lock.read_bytes() == right


def test_a_lock_rewritten_between_its_write_and_its_note_is_not_vouched_for(
    pipeline: Path,
    store: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The run notes the lock it wrote only if the file still holds those bytes: one written
    in between (a checkout at that moment) is not noted as made from the run's inputs."""
    lock = lock_path(pipeline)
    state_of = lock_memo._file_state

    def rewritten_first(lock_file: Path) -> dict[str, Any] | None:
        if lock_file == lock and b"breathinG" not in lock.read_bytes():
            lock.write_bytes(lock.read_bytes().replace(b"breathing", b"breathinG"))
        return state_of(lock_file)

    monkeypatch.setattr(lock_memo, "_file_state", rewritten_first)
    run(pipeline, store, capsys)
    monkeypatch.setattr(lock_memo, "_file_state", state_of)
    assert b"breathinG" in lock.read_bytes()  # the rewrite, as the other writer left it
    assert not lock_memo.lock_known_good(store, lock)
    assert "unchanged" not in run(pipeline, store, capsys)
    assert b"breathinG" not in lock.read_bytes()
