"""``plan`` looks at the store read-only: it opens it for writing only to remember a hash."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runner import cli
from runner.errors import DiskFull
from runner.store import Store
from tests.helpers import write

BODY = "nodes:\n  a: {kind: i2v, image: {keyframe: mara.front}, prompt: x}\n"
OLD = 1_000_000_000.0  # long past the hash cache's racy window


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Every store the commands open: whether it was opened read-only."""
    seen: list[bool] = []
    real = Store.open.__func__  # type: ignore[attr-defined]

    def recording(cls: type[Store], root: Path, *, read_only: bool = False) -> Store:
        seen.append(read_only)
        return real(cls, root, read_only=read_only)  # type: ignore[no-any-return]

    monkeypatch.setattr(Store, "open", classmethod(recording))
    return seen


def plan(path: Path, store: Path, capsys: pytest.CaptureFixture[str]) -> str:
    args = ["plan", str(path), "--backend", "local", "--cache-dir", str(store)]
    code = cli.run(args)
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def settled_project(tmp_path: Path) -> tuple[Path, Path, Path]:
    """The pipeline, its keyframe (written long enough ago for its hash to be remembered)
    and an empty store made beside them."""
    path = write(tmp_path, BODY)
    keyframe = tmp_path / "assets" / "key.png"
    os.utime(keyframe, (OLD, OLD))
    store = tmp_path / "store"
    Store.open(store).close()
    return path, keyframe, store


def test_a_plan_writes_to_the_store_only_to_remember_a_new_hash(
    tmp_path: Path, opened: list[bool], capsys: pytest.CaptureFixture[str]
) -> None:
    path, keyframe, store = settled_project(tmp_path)
    opened.clear()
    assert "to render: 1 of 1 nodes" in plan(path, store, capsys)
    assert opened == [True, False]  # the keyframe's hash was not known: remembered
    with Store.open(store, read_only=True) as looking:
        assert looking.known_hash(keyframe) is not None
    opened.clear()
    path.write_text(path.read_text().replace("prompt: x", "prompt: y"))
    plan(path, store, capsys)  # a recompile: it hashes the keyframe again
    assert opened == [True]  # remembered: the store is not opened for writing


def test_a_plan_reads_a_store_whose_tables_are_not_made_yet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, BODY)
    store = tmp_path / "store"
    Store.open(store).close()
    for table in (store / "records").iterdir():
        for file in table.iterdir():
            file.unlink()
    assert "to render: 1 of 1 nodes" in plan(path, store, capsys)


def test_a_plan_on_a_store_it_cannot_write_hashes_without_remembering(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path, keyframe, store = settled_project(tmp_path)
    real = Store.open.__func__  # type: ignore[attr-defined]

    def full(cls: type[Store], root: Path, *, read_only: bool = False) -> Store:
        if not read_only:
            raise DiskFull(root)
        return real(cls, root, read_only=True)  # type: ignore[no-any-return]

    monkeypatch.setattr(Store, "open", classmethod(full))
    assert "to render: 1 of 1 nodes" in plan(path, store, capsys)  # the keyframe was read
    with Store.open(store, read_only=True) as looking:
        assert looking.known_hash(keyframe) is None
