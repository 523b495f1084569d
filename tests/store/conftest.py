"""Fixtures the store's tests share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A new local store, open for the test."""
    with Store.open(tmp_path / "store") as opened:
        yield opened
