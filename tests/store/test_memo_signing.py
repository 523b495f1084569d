"""Memos and notes carry this machine's signature: one a pull request commits into a store
in the project (made elsewhere, or crafted) is not read, and compiling answers instead."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from runner.compile.check import check_pipeline
from runner.compile.lock_memo import lock_known_good
from runner.compile.memo import check_and_remember, recall, recall_findings
from runner.store import Store
from runner.store.memos import KEY_FILE, machine_key, memo_slot, read_note, write_note
from tests.compile.test_memo import memo_project, remember


@pytest.fixture
def pipeline(tmp_path: Path) -> Path:
    return memo_project(tmp_path / "proj")


@pytest.fixture
def store(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    Store.open(root).close()
    return root


def another_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """From here on, the key is another user's or machine's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "elsewhere"))


def test_the_key_is_made_once_private_to_its_owner(tmp_path: Path) -> None:
    key = machine_key()
    path = Path(os.environ["XDG_CACHE_HOME"]) / "shotgraph" / KEY_FILE
    assert key is not None and len(key) == 32 and path.read_bytes() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert machine_key() == key
    assert [p.name for p in path.parent.iterdir()] == [KEY_FILE]  # no temporary file left


def test_a_memo_made_elsewhere_is_not_read_and_the_compile_answers(
    pipeline: Path, store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remember(pipeline, store)
    assert recall_findings(pipeline, "local", store) is not None
    another_machine(tmp_path, monkeypatch)
    assert recall(pipeline, "local", store) is None
    assert recall_findings(pipeline, "local", store) is None
    # The compile answers, and its memo is this machine's from then on.
    again = check_and_remember(pipeline, "local", store)
    fresh = check_pipeline(pipeline, backend="local").require()
    assert again.compiled is not None
    assert {n: s.key for n, s in again.compiled.steps.items()} == {
        n: s.key for n, s in fresh.steps.items()
    }
    assert recall(pipeline, "local", store) is not None


def test_a_memo_changed_by_one_byte_is_not_read(pipeline: Path, store: Path) -> None:
    remember(pipeline, store)
    path = store / "memos" / memo_slot(pipeline, "local")
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    assert recall(pipeline, "local", store) is None


def test_a_note_made_elsewhere_is_not_read(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_note(store, "note", {"made_from": "x"})
    assert read_note(store, "note") == {"made_from": "x"}
    lock_file = tmp_path / "p.lock.json"
    lock_file.write_text("{}")
    another_machine(tmp_path, monkeypatch)
    assert read_note(store, "note") is None
    assert not lock_known_good(store, lock_file)


@pytest.mark.parametrize("damage", ["readable by others", "wrong size", "a symbolic link"])
def test_a_key_not_private_to_its_owner_turns_memos_off(
    damage: str, pipeline: Path, store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "cache" / "shotgraph"
    folder.mkdir(parents=True)
    key = folder / KEY_FILE
    if damage == "a symbolic link":
        (tmp_path / "shared.key").write_bytes(b"k" * 32)
        (tmp_path / "shared.key").chmod(0o600)
        key.symlink_to(tmp_path / "shared.key")
    else:
        key.write_bytes(b"k" * (31 if damage == "wrong size" else 32))
        key.chmod(0o644 if damage == "readable by others" else 0o600)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert machine_key() is None
    result = check_and_remember(pipeline, "local", store)
    assert result.compiled is not None and not result.errors
    assert recall(pipeline, "local", store) is None
