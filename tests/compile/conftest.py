"""Fixtures the compile tests share."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """An empty local store (a module may override it with one holding more)."""
    root = tmp_path / "store"
    Store.open(root).close()
    return root
