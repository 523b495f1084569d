"""The review file's format: one sorted line per node, read back as written, every malformed
line an error with its line, and the file held to the rules of any file a pipeline reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.errors import Diagnostics
from runner.pipeline.review_file import Review, Verdict, parse_review, review_path
from tests.helpers import check

A, B = "a" * 64, "b" * 64
BODY = """nodes:
  shot:
    kind: i2v
    image: {keyframe: mara.front}
    prompt: a close-up
    takes: 2
"""


def parsed(text: str, tmp_path: Path) -> tuple[Review, Diagnostics]:
    diags = Diagnostics()
    return parse_review(text, tmp_path / "p.review", diags), diags


def test_the_review_file_round_trips_one_sorted_line_per_node(tmp_path: Path) -> None:
    review = (
        Review(tmp_path / "p.review")
        .with_verdict("zeta", Verdict(False, B, 'too "dark"\nrelight'))
        .with_pick("alpha", 2)
        .with_verdict("alpha", Verdict(True, A))
    )
    text = review.render("p.yaml")
    lines = text.splitlines()
    assert lines[0].startswith("# shotgraph review of p.yaml")
    assert lines[1:] == [
        f"alpha take=2 approved={A}",
        f'zeta rejected={B} note="too \\"dark\\"\\nrelight"',
    ]
    again, diags = parsed(text, tmp_path)
    assert not diags.items
    assert again.picks == {"alpha": 2}
    assert again.verdicts == {
        "alpha": Verdict(True, A),
        "zeta": Verdict(False, B, 'too "dark"\nrelight'),
    }


def test_a_note_keeps_any_text_on_its_one_line(tmp_path: Path) -> None:
    note = "</script><script>alert(1)</script> — «plus sombre»\t\\n\r\nend"
    text = Review().with_verdict("shot", Verdict(False, A, note)).render("p.yaml")
    assert len(text.splitlines()) == 2  # whatever the note holds, the node keeps one line
    again, diags = parsed(text, tmp_path)
    assert not diags.items and again.verdicts["shot"].note == note


def test_a_node_with_nothing_left_to_say_has_no_line(tmp_path: Path) -> None:
    review = Review().with_verdict("shot", Verdict(True, A)).with_verdict("shot", None)
    assert review.render("p.yaml").splitlines()[1:] == []
    assert review.with_pick("shot", 1).render("p.yaml").splitlines()[1:] == ["shot take=1"]


@pytest.mark.parametrize(
    "line",
    [
        "alpha take=two",
        f"alpha approved={A[:10]}",
        f"alpha approved={A.upper()}",
        'alpha note="no verdict"',
        f'alpha approved={A} note="unterminated',
        f"alpha approved={A} note=bare",
        f"alpha approved={A} take=2",  # out of order
        f"alpha accepted={A}",
        "../etc approved=" + A,
    ],
)
def test_a_malformed_review_line_is_an_error_with_its_line(tmp_path: Path, line: str) -> None:
    review, diags = parsed(f"# head\n{line}\n", tmp_path)
    [error] = diags.items
    assert error.code == "review-line" and error.location.line == 2
    assert review.nodes == {}


def test_a_second_line_for_a_node_is_an_error_and_the_first_holds(tmp_path: Path) -> None:
    review, diags = parsed(f"shot take=2\n\n# again\nshot approved={A}\n", tmp_path)
    [error] = diags.items
    assert error.code == "review-duplicate" and error.location.line == 4
    assert "the first is line 1" in error.message
    assert review.picks == {"shot": 2} and review.verdicts == {}


def test_the_review_file_sits_beside_its_pipeline(tmp_path: Path) -> None:
    assert review_path(tmp_path / "films" / "demo.yaml") == tmp_path / "films" / "demo.review"


def test_a_review_file_is_read_with_the_pipeline(tmp_path: Path) -> None:
    (tmp_path / "p.review").write_text(f"shot take=2 approved={A}\n")
    result = check(tmp_path, BODY)
    assert not result.errors
    assert result.compiled is not None
    assert result.compiled.pipeline.review.picks == {"shot": 2}


def test_a_review_file_outside_the_project_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text(f"shot take=2 approved={A}\n")
    root = tmp_path / "project"
    root.mkdir()
    (root / "p.review").symlink_to(outside)
    [error] = check(root, BODY).errors  # and no pick read from it
    assert error.code == "path-outside-project"
    assert str(error.location.file) == str(root / "p.review")


def test_a_review_file_too_large_or_not_text_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "p.review").write_bytes(b"shot take=2\n" + b"#" * (1024 * 1024 + 1))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "p.review").write_bytes(b"shot take=2 \xff\xfe\n")
    for where, code in (("a", "path-too-large"), ("b", "review-text")):
        [error] = check(tmp_path / where, BODY).errors
        assert error.code == code
        assert str(error.location.file) == str(tmp_path / where / "p.review")
