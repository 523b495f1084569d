"""The review file's format, the gate rule, and the comparison of two locks."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from runner.compile.steps import Step
from runner.errors import Diagnostics, ShotgraphError
from runner.lock import Lock, LockedOutput, LockEntry
from runner.pipeline.review_file import Review, Verdict, parse_review
from runner.review.gates import Gates
from runner.review.lockdiff import diff_locks, lock_at, prompt_diff

A, B = "a" * 64, "b" * 64


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
    diags = Diagnostics()
    again = parse_review(text, tmp_path / "p.review", diags)
    assert not diags.items
    assert again.picks == {"alpha": 2}
    assert again.verdicts == {
        "alpha": Verdict(True, A),
        "zeta": Verdict(False, B, 'too "dark"\nrelight'),
    }


@pytest.mark.parametrize(
    "line",
    [
        "alpha take=two",
        f"alpha approved={A[:10]}",
        'alpha note="no verdict"',
        f'alpha approved={A} note="unterminated',
        f"alpha approved={A} take=2",  # out of order
        "../etc approved=" + A,
    ],
)
def test_a_malformed_review_line_is_an_error_with_its_line(tmp_path: Path, line: str) -> None:
    diags = Diagnostics()
    review = parse_review(f"# head\n{line}\n", tmp_path / "p.review", diags)
    [error] = diags.items
    assert error.code == "review-line" and error.location.line == 2
    assert review.nodes == {}


def step(name: str, deps: tuple[str, ...] = (), *, gate: bool = False, takes: int = 0) -> Step:
    return Step(name, "i2v", deps, key=f"key-{name}", gate=gate, takes=takes)


STEPS = {
    "shot": step("shot", gate=True),
    "more": step("more", ("shot",)),
    "more2": step("more2", ("more",)),
    "other": step("other"),
}


def test_a_gate_holds_every_descendant_until_its_current_output_is_approved() -> None:
    def waits(review: Review, output: str | None) -> dict[str, str]:
        found = Gates(STEPS, review).waiting(lambda name: output if name == "shot" else None)
        return {name: wait.why for name, wait in found.items()}

    none = Review()
    assert waits(none, None) == {"more": "renders first", "more2": "renders first"}
    assert waits(none, A) == {"more": "not approved yet", "more2": "not approved yet"}
    approved = none.with_verdict("shot", Verdict(True, A))
    assert waits(approved, A) == {}
    assert waits(approved, B)["more2"] == "its approval is void: the output changed"
    rejected = none.with_verdict("shot", Verdict(False, A, "flat light"))
    assert waits(rejected, A)["more"] == "rejected: flat light"
    assert waits(rejected, B)["more"] == "not approved yet"


def test_a_gated_node_with_takes_waits_for_a_pick_too() -> None:
    steps = {**STEPS, "shot": step("shot", gate=True, takes=3)}
    approved = Review().with_verdict("shot", Verdict(True, A))
    assert Gates(steps, approved).holds("shot", A) is not None
    picked = approved.with_pick("shot", 2)
    assert Gates(steps, picked).holds("shot", A) is None
    assert Gates(steps, picked).holds("other", None) is None  # not a gate


def entry(key: str, prompt: str, cost: float = 0.04, seed: int = 7) -> LockEntry:
    request = {"prompt": prompt, "seed": seed, "image_url": f"sha256:{key}"}
    return LockEntry(
        kind="i2v",
        key=key,
        deps=(),
        inputs=(),
        output=LockedOutput(A, 10, "video/mp4"),
        endpoint="fal-ai/x",
        request=request,
        seed=seed,
        cost_usd=cost,
    )


def test_diff_locks_names_added_removed_changed_fields_and_the_cost_delta() -> None:
    old = Lock("p", "p.yaml", "fal", nodes={"a": entry("k1", "a cat"), "b": entry("k2", "x")})
    new = replace(
        old,
        nodes={
            "a": entry("k3", "a black cat", seed=8),
            "c": entry("k4", "new", cost=0.2),
        },
    )
    diff = diff_locks(old, new)
    assert [(s.node, s.change) for s in diff.shots] == [
        ("a", "changed"),
        ("b", "removed"),
        ("c", "added"),
    ]
    # the image_url differs too, but it is a media slot only when inputs say so: none here
    assert diff.shots[0].fields == ["image_url", "prompt", "seed"]
    assert diff.cost_delta == pytest.approx(0.2 - 0.04)
    assert diff_locks(old, old).shots == () and diff_locks(old, old).unchanged == 2


def test_prompt_diff_keeps_the_words_in_reading_order() -> None:
    runs = prompt_diff(
        "Close-up, subtle breathing. Camera: static.", "Close-up, a slow smile. Camera: static."
    )
    assert (
        "".join(text for op, text in runs if op != "ins")
        == "Close-up, subtle breathing. Camera: static."
    )
    assert (
        "".join(text for op, text in runs if op != "del")
        == "Close-up, a slow smile. Camera: static."
    )
    assert ("del", "subtle breathing. ") in runs and ("ins", "a slow smile. ") in runs


def test_lock_at_reads_a_file_or_a_git_revision(tmp_path: Path) -> None:
    lock = Lock("p", "p.yaml", "fal", nodes={"a": entry("k1", "a cat")})
    path = tmp_path / "p.lock.json"
    path.write_text(lock.render())

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "0")
    git("add", "p.lock.json")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "1")
    path.write_text(replace(lock, nodes={}).render())
    assert lock_at(str(path), path).nodes == {}
    assert set(lock_at("HEAD", path).nodes) == {"a"}
    with pytest.raises(ShotgraphError, match="no lockfile or git revision 'HEAD~1'"):
        lock_at("HEAD~1", path)  # the lockfile was not committed yet
