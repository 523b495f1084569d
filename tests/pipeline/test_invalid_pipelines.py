"""Broken pipelines under tests/fixtures/invalid/: each gets the error it deserves.

A fixture marks the line where an error is expected with a trailing ``# error: <fragment>``
comment (``# error-anywhere:`` when the line does not matter). The fragment must appear in
the message or hint of an error reported on that line.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runner.compile.check import check_pipeline

FIXTURES = Path(__file__).parents[1] / "fixtures" / "invalid"
MARK = re.compile(r"#\s*error(-anywhere)?:\s*(.+?)\s*$")


def expectations(path: Path) -> list[tuple[int | None, str]]:
    found = []
    data = path.read_bytes()
    # Some fixtures are broken text on purpose (invalid UTF-8 or UTF-16, control characters).
    encoding = "utf-16" if data.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8"
    text = data.decode(encoding, errors="replace")
    for number, line in enumerate(text.split("\n"), start=1):
        match = MARK.search(line)
        if match:
            found.append((None if match.group(1) else number, match.group(2)))
    return found


CASES = sorted(FIXTURES.glob("*.yaml"))


def test_there_are_many_broken_pipelines() -> None:
    assert len(CASES) >= 40
    assert all(expectations(case) for case in CASES), "every fixture states what it expects"


@pytest.mark.parametrize("path", CASES, ids=[c.stem for c in CASES])
def test_broken_pipeline_reports_expected_error(path: Path) -> None:
    result = check_pipeline(path)
    assert result.errors, "a broken pipeline must not validate"
    for line, fragment in expectations(path):
        candidates = [e for e in result.errors if line is None or e.location.line == line]
        texts = [f"{e.message} | hint: {e.hint}" for e in candidates]
        assert any(fragment in text for text in texts), (
            f"expected an error containing {fragment!r} on line {line}; got:\n"
            + "\n".join(e.render() for e in result.errors)
        )
    for error in result.errors:
        assert error.location.file is not None, error.render()


def test_every_error_at_once(tmp_path: Path) -> None:
    """Unrelated errors in one file are all reported, each with its own line."""
    (tmp_path / ".git").mkdir()
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(
        "version: 1\n"
        "name: many\n"
        "nodes:\n"
        "  a: {kind: t2v, prompt: x, num_frames: 500}\n"
        "  b: {kind: t2v, prompt: x, guidance_scale: 3}\n"
        "  c: {kind: extend, video: {from: nowhere}, prompt: x}\n"
        "  d: {kind: t2v, prompt: {template: shot.j2}}\n"
        "  e: {kind: t2v, promt: x}\n"
    )
    result = check_pipeline(pipeline)
    assert sorted({e.location.line for e in result.errors}) == [4, 5, 6, 7, 8]


def test_a_node_of_a_kind_its_family_lacks(tmp_path: Path) -> None:
    """The schema checks a generation node by its family's endpoint for its kind; a family
    without one leaves the node unchecked (ltx-2-fast has no extend), so the builder must
    still say what is missing and take a bad model or prompt without a crash."""
    (tmp_path / ".git").mkdir()
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(
        "version: 1\n"
        "name: unchecked\n"
        "model: ltx-2-fast\n"
        "nodes:\n"
        "  a: {kind: extend, prompt: x}\n"
        "  b: {kind: extend, model: [1, a], video: {url: 'https://example.com/y.mp4'}, prompt: x}\n"
        "  c: {kind: extend, video: {url: 'https://example.com/y.mp4'}, prompt: true}\n"
    )
    errors = {(e.location.line, e.message) for e in check_pipeline(pipeline).errors}
    no_extend = "model family 'ltx-2-fast' has no extend endpoint (it has: t2v, i2v, retake)"
    assert errors == {(5, "an extend node needs 'video'"), (6, no_extend), (7, no_extend)}
