"""The production guide's warnings."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import check


def codes(tmp_path: Path, body: str) -> list[str]:
    result = check(tmp_path, body)
    assert not result.errors, [e.render() for e in result.errors]
    return sorted(w.code for w in result.warnings)


def test_clean_pipeline_has_no_warnings(tmp_path: Path) -> None:
    assert (
        codes(tmp_path, "nodes:\n  a: {kind: i2v, image: {keyframe: mara.front}, prompt: x}\n")
        == []
    )


def test_expand_prompt_on_continuity_shots(tmp_path: Path) -> None:
    body = """nodes:
  a: {kind: i2v, image: {keyframe: mara.front}, prompt: x, expand_prompt: true}
  b: {kind: extend, video: {from: a}, prompt: x, expand_prompt: true}
  c: {kind: t2v, prompt: x, expand_prompt: true}
"""
    assert codes(tmp_path, body) == ["lint.expand-prompt", "lint.expand-prompt"]


def test_more_than_one_action_beat(tmp_path: Path) -> None:
    body = """nodes:
  a: {kind: t2v, prompt: "Wide shot. Action: she walks across the room, sits, then stands up. Camera: still."}
  b: {kind: t2v, prompt: "Wide shot. Action: subtle breathing and a slow head turn. Camera: still."}
"""
    result = check(tmp_path, body)
    assert [(w.code, w.location.key_path) for w in result.warnings] == [
        ("lint.action-beats", ("nodes", "a"))
    ]


def test_lora_count_and_weights(tmp_path: Path) -> None:
    body = """nodes:
  a:
    kind: t2v
    prompt: x
    loras:
      - {path: https://x.test/1.safetensors, scale: 0.5, role: character}
      - {path: https://x.test/2.safetensors, scale: 0.5, role: character}
      - {path: https://x.test/3.safetensors, role: style}
"""
    assert codes(tmp_path, body) == ["lint.lora-count", "lint.lora-count", "lint.lora-weight"]


def test_long_clips_and_frame_counts(tmp_path: Path) -> None:
    body = """model: ltx-0.9.8-distilled
nodes:
  long: {kind: t2v, prompt: x, num_frames: 241}
  odd: {kind: t2v, prompt: x, num_frames: 100}
"""
    assert codes(tmp_path, body) == ["lint.frame-count", "lint.long-clip"]


def test_text_to_video_of_a_character(tmp_path: Path) -> None:
    assert codes(tmp_path, "nodes:\n  a: {kind: t2v, character: mara, prompt: x}\n") == [
        "lint.t2v-identity"
    ]


def test_user_preset_parameter_the_endpoint_does_not_take(tmp_path: Path) -> None:
    body = """presets:
  detailed: {enable_detail_pass: true}
nodes:
  a: {kind: t2v, preset: detailed, prompt: x}
  b: {kind: t2v, preset: detailed, prompt: y}
"""
    assert codes(tmp_path, body) == ["lint.param-skipped"]
