"""The gate rule: what waits behind a gated node, and for which reason; and where a gate's
current output comes from (the store's result for its key, else the lockfile's)."""

from __future__ import annotations

from pathlib import Path

from runner.compile.steps import Step
from runner.lock import Lock, LockedOutput, LockEntry
from runner.pipeline.review_file import Review, Verdict
from runner.review.gates import Gates, output_finder
from runner.store import Store
from tests.record_helpers import record

A, B = "a" * 64, "b" * 64


def step(name: str, deps: tuple[str, ...] = (), *, gate: bool = False, takes: int = 0) -> Step:
    return Step(name, "i2v", deps, key=f"key-{name}", gate=gate, takes=takes)


STEPS = {
    "shot": step("shot", gate=True),
    "more": step("more", ("shot",)),
    "more2": step("more2", ("more",)),
    "other": step("other"),
}


def waits(steps: dict[str, Step], review: Review, outputs: dict[str, str]) -> dict[str, str]:
    found = Gates(steps, review).waiting(outputs.get)
    return {name: f"{wait.gate}: {wait.why}" for name, wait in found.items()}


def test_a_gate_holds_every_descendant_until_its_current_output_is_approved() -> None:
    none = Review()
    assert waits(STEPS, none, {}) == {"more": "shot: renders first", "more2": "shot: renders first"}
    assert waits(STEPS, none, {"shot": A})["more2"] == "shot: not approved yet"
    approved = none.with_verdict("shot", Verdict(True, A))
    assert waits(STEPS, approved, {"shot": A}) == {}
    assert waits(STEPS, approved, {"shot": B})["more2"] == (
        "shot: its approval is void: the output changed"
    )
    rejected = none.with_verdict("shot", Verdict(False, A, "flat light"))
    assert waits(STEPS, rejected, {"shot": A})["more"] == "shot: rejected: flat light"
    assert waits(STEPS, rejected, {"shot": B})["more"] == "shot: not approved yet"
    assert waits(STEPS, none.with_verdict("shot", Verdict(False, A)), {"shot": A}) == {
        "more": "shot: rejected",
        "more2": "shot: rejected",
    }


def test_the_gate_itself_and_what_does_not_use_it_never_wait() -> None:
    found = waits(STEPS, Review(), {})
    assert "shot" not in found and "other" not in found
    # a verdict on a node that is no gate holds nothing
    steps = {**STEPS, "shot": step("shot")}
    assert waits(steps, Review().with_verdict("shot", Verdict(False, A, "no")), {"shot": A}) == {}


def test_a_node_behind_two_gates_waits_for_the_first_that_holds() -> None:
    steps = {
        "shot": step("shot", gate=True),
        "more": step("more", ("shot",), gate=True),
        "cut": step("cut", ("other", "more")),
        "other": step("other"),
    }
    both = {"shot": A, "more": B}
    assert waits(steps, Review(), both) == {
        "more": "shot: not approved yet",
        "cut": "shot: not approved yet",
    }
    first = Review().with_verdict("shot", Verdict(True, A))
    assert waits(steps, first, both) == {"cut": "more: not approved yet"}
    assert waits(steps, first.with_verdict("more", Verdict(True, B)), both) == {}


def test_a_gated_node_with_takes_waits_for_a_pick_too() -> None:
    steps = {**STEPS, "shot": step("shot", gate=True, takes=3)}
    approved = Review().with_verdict("shot", Verdict(True, A))
    wait = Gates(steps, approved).holds("shot", A)
    assert (
        wait is not None and wait.describe() == "waiting for approval of shot (no take picked yet)"
    )
    picked = approved.with_pick("shot", 2)
    assert Gates(steps, picked).holds("shot", A) is None
    assert Gates(steps, picked).holds("other", None) is None  # not a gate


def lock_entry(key: str, sha: str) -> LockEntry:
    return LockEntry(
        kind="i2v", key=key, deps=(), inputs=(), output=LockedOutput(sha, 3, "video/mp4")
    )


def test_the_current_output_is_the_stores_else_the_lockfiles_of_the_same_key(
    tmp_path: Path,
) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"mp4")
    lock = Lock(
        "p",
        "p.yaml",
        "local",
        nodes={"shot": lock_entry("key-shot", B), "more": lock_entry("old-key", B)},
    )
    with Store.open(tmp_path / "store") as store:
        stored = store.put_file(clip)
        shot = record(
            "key-shot",
            stored,
            node="shot",
            kind="i2v",
            endpoint="fal-ai/x",
            request_id="r1",
            cost_usd=0.0,
        )
        # nothing in the store: the lockfile's entry, only if it was rendered from this key
        output_of = output_finder(STEPS, store, lock, "local")
        assert output_of("shot") == B
        assert output_of("more") is None  # the lock's entry has another key
        assert output_of("nowhere") is None
        store.put_result(shot)
        assert output_of("shot") == stored.sha256  # the store wins
        # a result of another backend does not count: the lock's entry does
        assert output_finder(STEPS, store, lock, "fal")("shot") == B
    assert output_finder(STEPS, None, None, "local")("shot") is None
