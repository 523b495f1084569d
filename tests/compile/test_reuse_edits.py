"""Edits chosen to break the reuse of unchanged nodes (``runner.compile.reuse``): after
each, the recompile through the memo must give exactly what a full compile gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.compile.check import CheckResult, check_pipeline
from runner.compile.memo import check_and_remember
from runner.store import Store
from tests.compile.test_memo import memo_project
from tests.compile.test_reuse import canonical


@pytest.fixture
def store(tmp_path: Path) -> Path:
    Store.open(tmp_path / "store").close()
    return tmp_path / "store"


def alike_after(path: Path, store: Path, text: str) -> CheckResult:
    """Write ``text`` over the pipeline remembered in ``store``; the recompile, which must
    equal a full compile."""
    path.write_text(text)
    result = check_and_remember(path, "local", store)
    assert canonical(result) == canonical(check_pipeline(path, backend="local"))
    return result


SELF_READ = """version: 1
name: self
templates: .
nodes:
  quoted:
    kind: t2v
    prompt: {template: p.yaml}
  other:
    kind: t2v
    prompt: a quiet street at night
"""


def test_a_node_that_reads_the_pipeline_file_itself(tmp_path: Path, store: Path) -> None:
    """A template (or a keyframe) may be the pipeline file: its node's record does not
    change when another node's text does, but what it reads does."""
    path = memo_project(tmp_path / "proj", SELF_READ)
    assert not check_and_remember(path, "local", store).errors
    alike_after(path, store, SELF_READ.replace("quiet street", "busy street"))
