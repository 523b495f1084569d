"""Files that appear whole or not at all: the one primitive every writer uses."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from runner import atomic


def test_write_text_replaces_and_leaves_nothing_beside(tmp_path: Path) -> None:
    dest = tmp_path / "deep" / "shot.lock.json"
    atomic.write_text(dest, "one\n")
    atomic.write_text(dest, "two\n")
    assert dest.read_text() == "two\n"
    assert [p.name for p in dest.parent.iterdir()] == ["shot.lock.json"]


def test_the_mode_is_what_the_umask_gives_not_private(tmp_path: Path) -> None:
    previous = os.umask(0o027)
    try:
        atomic.write_text(tmp_path / "out.txt", "x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == 0o640


def test_a_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path) -> None:
    dest = tmp_path / "cut.mp4"
    dest.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), atomic.replacing(dest, ".mp4") as temp:
        assert temp.parent == tmp_path and temp.suffix == ".mp4" and temp.name.startswith(".")
        temp.write_bytes(b"half a ne")
        raise KeyboardInterrupt
    assert dest.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["cut.mp4"]


def test_two_writers_get_their_own_temporaries(tmp_path: Path) -> None:
    dest = tmp_path / "x.json"
    with atomic.replacing(dest) as first, atomic.replacing(dest) as second:
        assert first != second
        first.write_text("first")
        second.write_text("second")
    assert dest.read_text() == "first"  # the outer writer finishes last and wins
