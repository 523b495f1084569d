"""Takes and gates at compile time: each take its own key, the node is its picked take, and
neither a gate nor take 1 changes any key the pipeline had before."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import check, compiled

SHOT = """nodes:
  shot:
    kind: i2v
    image: {keyframe: mara.front}
    seed: 7
    prompt: Close-up of Mara, subtle breathing.
EXTRA
  more: {kind: extend, video: {from: shot}, prompt: She keeps looking.}
"""


def body(extra: str = "") -> str:
    return SHOT.replace("EXTRA\n", extra)


def keys(root: Path, text: str) -> dict[str, str]:
    return {name: step.key for name, step in compiled(root, text).steps.items()}


def test_take_one_and_a_gate_change_no_key(tmp_path: Path) -> None:
    plain = keys(tmp_path / "a", body())
    gated = keys(tmp_path / "b", body("    gate: true\n"))
    with_takes = keys(tmp_path / "c", body("    takes: 3\n"))
    assert gated == plain
    assert with_takes["shot"] == with_takes["shot#1"] == plain["shot"]
    assert with_takes["more"] == plain["more"]
    assert len({with_takes[f"shot#{i}"] for i in (1, 2, 3)}) == 3


def test_takes_are_steps_with_their_own_seeds_and_the_node_is_the_pick(tmp_path: Path) -> None:
    result = compiled(tmp_path, body("    takes: 3\n"))
    steps = result.steps
    assert list(steps)[:4] == ["shot#1", "shot#2", "shot#3", "shot"]
    assert [steps[f"shot#{i}"].seed for i in (1, 2, 3)] == [7, 8, 9]
    assert steps["shot#2"].take == 2 and steps["shot#2"].take_of == "shot"
    assert steps["shot"].take == 1 and steps["shot"].takes == 3
    assert steps["more"].deps == ("shot",)
    (tmp_path / "p.review").write_text("shot take=3\n")
    picked = compiled(tmp_path, body("    takes: 3\n")).steps
    assert picked["shot"].key == picked["shot#3"].key
    assert picked["more"].key != steps["more"].key  # its input is another take now


def test_a_list_of_takes_varies_what_each_says(tmp_path: Path) -> None:
    takes = """    takes:
      - {}
      - {seed: 100, num_frames: 97}
      - {prompt: "Close-up of Mara, a slow smile."}
"""
    steps = compiled(tmp_path, body(takes)).steps
    assert steps["shot#2"].seed == 100 and steps["shot#2"].body is not None
    assert steps["shot#2"].body["num_frames"] == 97
    assert steps["shot#3"].body is not None and "slow smile" in steps["shot#3"].body["prompt"]
    assert steps["shot#3"].seed == 9  # the node's seed plus its position


def test_take_errors_point_at_the_take(tmp_path: Path) -> None:
    result = check(tmp_path, body("    takes:\n      - {}\n      - {guidance_scale: 3}\n"))
    [error] = result.errors
    assert error.location.key_path == ("nodes", "shot", "takes", 1, "guidance_scale")
    assert error.location.line == 16  # the second take's line
    too_many = check(tmp_path / "b", body("    takes: 40\n"))
    assert [e.code for e in too_many.errors] == ["takes-count"]


def test_the_review_file_is_checked_with_the_pipeline(tmp_path: Path) -> None:
    (tmp_path / "p.review").write_text(
        "# picks\nshot take=5\nmore take=2\ngone approved=" + "a" * 64 + "\nbad line!\n"
    )
    result = check(tmp_path, body("    takes: 3\n"))
    found = {(d.code, d.location.line) for d in result.diagnostics}
    assert ("review-take", 2) in found  # shot has 3 takes
    assert ("review-take", 3) in found  # more has none
    assert ("review-unknown-node", 4) in found  # a warning only
    assert ("review-line", 5) in found
    assert all(str(d.location.file).endswith("p.review") for d in result.diagnostics)
