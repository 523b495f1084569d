"""How two locks differ: which shots changed (by cache key), which request fields, the
prompt's words, the cost delta."""

from __future__ import annotations

from dataclasses import replace

import pytest

from runner.lock import Lock, LockedInput, LockedOutput, LockEntry
from runner.review.lockdiff import Side, diff_locks, diff_sides, prompt_diff

A = "a" * 64


def entry(
    key: str,
    prompt: str,
    cost: float | None = 0.04,
    seed: int = 7,
    image: str | None = None,
    media: bool = False,
    endpoint: str = "fal-ai/x",
) -> LockEntry:
    image = image or key
    request = {"prompt": prompt, "seed": seed, "image_url": f"sha256:{image}"}
    inputs = (LockedInput(("image_url",), sha256=image, size=1, file="a.png"),) if media else ()
    return LockEntry(
        kind="i2v",
        key=key,
        deps=(),
        inputs=inputs,
        output=LockedOutput(A, 10, "video/mp4"),
        endpoint=endpoint,
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
    assert [s.node for s in diff.of("removed")] == ["b"]
    # the image_url differs too, but it is a media slot only when inputs say so: none here
    assert diff.shots[0].fields == ["image_url", "prompt", "seed"]
    assert [s.cost_delta for s in diff.shots] == [0.0, -0.04, 0.2]
    assert diff.cost_delta == pytest.approx(0.2 - 0.04)
    assert diff_locks(old, old).shots == () and diff_locks(old, old).unchanged == 2


def test_a_shot_whose_only_change_is_an_input_says_inputs() -> None:
    old = Lock("p", "p.yaml", "fal", nodes={"a": entry("k1", "a cat", image="1", media=True)})
    new = replace(old, nodes={"a": entry("k2", "a cat", image="2", media=True)})
    [shot] = diff_locks(old, new).shots
    assert shot.fields == ["inputs"]
    moved = replace(
        old, nodes={"a": entry("k3", "a cat", image="1", media=True, endpoint="fal-ai/y")}
    )
    assert diff_locks(old, moved).shots[0].fields == ["endpoint"]


def test_the_same_key_is_the_same_shot_whatever_else_the_entry_says() -> None:
    old = Lock("p", "p.yaml", "fal", nodes={"a": entry("k1", "a cat", cost=None)})
    new = replace(old, nodes={"a": replace(entry("k1", "a cat"), request_id="another run")})
    diff = diff_locks(old, new)
    assert diff.shots == () and diff.unchanged == 1 and diff.cost_delta == 0.0


def test_a_side_needs_no_lock_entry() -> None:
    """The report compares a lock with a pipeline not rendered yet: sides without output."""
    planned = Side("k9", "t2v", "fal-ai/t", {"prompt": "a street"}, (), 0.1, None)
    diff = diff_sides({"a": Side.of_entry(entry("k1", "a cat"))}, {"a": planned})
    [shot] = diff.shots
    assert shot.new is not None and shot.new.output is None and shot.new.prompt == "a street"
    assert shot.fields[0] == "endpoint" and "prompt" in shot.fields
    assert shot.cost_delta == pytest.approx(0.06)


def test_prompt_diff_keeps_the_words_in_reading_order() -> None:
    old = "Close-up, subtle breathing. Camera: static."
    new = "Close-up, a slow smile. Camera: static."
    runs = prompt_diff(old, new)
    assert "".join(text for op, text in runs if op != "ins") == old
    assert "".join(text for op, text in runs if op != "del") == new
    assert ("del", "subtle breathing. ") in runs and ("ins", "a slow smile. ") in runs


@pytest.mark.parametrize(
    ("old", "new", "runs"),
    [
        ("same words", "same words", [("same", "same words")]),
        ("", "all new", [("ins", "all new")]),
        ("all gone", "", [("del", "all gone")]),
        ("", "", []),
    ],
)
def test_prompt_diff_of_equal_and_empty_prompts(
    old: str, new: str, runs: list[tuple[str, str]]
) -> None:
    assert prompt_diff(old, new) == runs
