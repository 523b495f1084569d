"""LTX-2 nodes to exact requests: each kind's body layout, seeds where fal takes them, the
`/lora` twin, per-family parameters, a retake's section, and the lint fal's pages call for."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.ltx.registry import Deprecation, registry
from tests.helpers import check, compiled


def errors(tmp_path: Path, body: str) -> list[str]:
    return [f"{e.message} | {e.hint}" for e in check(tmp_path, body).errors]


def warnings(tmp_path: Path, body: str) -> list[str]:
    result = check(tmp_path, body)
    assert not result.errors, [e.render() for e in result.errors]
    return sorted(w.code for w in result.warnings)


def test_each_kind_puts_its_media_where_its_endpoint_wants_it(tmp_path: Path) -> None:
    c = compiled(
        tmp_path,
        """nodes:
  a: {kind: i2v, model: ltx-2-pro, image: {keyframe: mara.front}, prompt: x}
  b: {kind: extend, model: ltx-2-19b, video: {from: a}, prompt: x}
  c: {kind: v2v, model: ltx-2-19b, video: {motion: orbit}, image: {keyframe: mara.front}, prompt: x}
  d: {kind: retake, model: ltx-2-pro, video: {from: a}, prompt: x, start_time: 1, duration: 2}
""",
    )
    steps = c.steps
    assert steps["a"].body is not None and steps["a"].body["image_url"].startswith("sha256:")
    assert [s.pointer for s in steps["b"].slots] == [("video_url",)]
    assert steps["b"].body is not None and "video" not in steps["b"].body
    assert [s.pointer for s in steps["c"].slots] == [("video_url",), ("image_url",)]
    body = steps["d"].body
    assert body is not None and body["video_url"] == "node:a"
    assert (body["start_time"], body["duration"], body["retake_mode"]) == (
        1,
        2,
        "replace_audio_and_video",
    )


def test_sound_is_asked_for_explicitly(tmp_path: Path) -> None:
    c = compiled(tmp_path, "nodes:\n  a: {kind: t2v, model: ltx-2-fast, prompt: x}\n")
    assert c.steps["a"].body is not None and c.steps["a"].body["generate_audio"] is True


def test_no_seed_where_fal_takes_none(tmp_path: Path) -> None:
    c = compiled(
        tmp_path,
        """nodes:
  a: {kind: t2v, model: ltx-2-pro, prompt: x}
  b: {kind: t2v, model: ltx-2-19b, prompt: x}
""",
    )
    assert c.steps["a"].body is not None and "seed" not in c.steps["a"].body
    assert c.steps["a"].seed is None
    assert c.steps["b"].body is not None and c.steps["b"].body["seed"] == c.steps["b"].seed
    [error] = errors(tmp_path, "nodes:\n  a: {kind: t2v, model: ltx-2-pro, prompt: x, seed: 3}\n")
    assert "takes no seed" in error


def test_loras_choose_the_lora_twin(tmp_path: Path) -> None:
    c = compiled(
        tmp_path,
        """nodes:
  a: {kind: t2v, model: ltx-2-19b, prompt: x, loras: [{path: "https://e.com/s.safetensors", scale: 0.5}]}
  b: {kind: t2v, model: ltx-2-19b, prompt: x}
""",
    )
    a, b = c.steps["a"], c.steps["b"]
    assert a.endpoint is not None and a.endpoint.id == "fal-ai/ltx-2-19b/text-to-video/lora"
    assert a.body is not None and a.body["loras"] == [
        {"path": "https://e.com/s.safetensors", "scale": 0.5}
    ]
    assert b.endpoint is not None and b.endpoint.id == "fal-ai/ltx-2-19b/text-to-video"
    [error] = errors(
        tmp_path,
        'nodes:\n  a: {kind: t2v, model: ltx-2-pro, prompt: x, loras: [{path: "https://e.com/s"}]}\n',
    )
    assert "does not take LoRAs" in error and "ltx-2-19b" in error


@pytest.mark.parametrize(
    ("model", "param", "fragment"),
    [
        ("ltx-2-19b-distilled", "guidance_scale: 4", "the distilled LTX-2 model takes no guidance"),
        ("ltx-2-pro", "num_inference_steps: 20", "LTX-2 Pro and Fast take no step counts"),
        ("ltx-2-19b", "expand_prompt: true", "enable_prompt_expansion"),
        ("ltx-0.9.7-distilled", "guidance_scale: 4", "LTX 13B does not take a guidance scale"),
    ],
)
def test_forbidden_parameters_say_what_the_family_uses(
    tmp_path: Path, model: str, param: str, fragment: str
) -> None:
    [error] = errors(tmp_path, f"nodes:\n  a: {{kind: t2v, model: {model}, prompt: x, {param}}}\n")
    assert fragment in error


def test_19b_takes_guidance_scale_and_steps(tmp_path: Path) -> None:
    c = compiled(
        tmp_path,
        "nodes:\n  a: {kind: t2v, model: ltx-2-19b, prompt: x, guidance_scale: 4, num_inference_steps: 30}\n",
    )
    body = c.steps["a"].body
    assert body is not None and (body["guidance_scale"], body["num_inference_steps"]) == (4, 30)


def test_a_retake_section_past_the_clip_is_an_error(tmp_path: Path) -> None:
    body = """nodes:
  a: {kind: t2v, model: ltx-2-pro, prompt: x, duration: 6}
  b: {kind: retake, model: ltx-2-pro, video: {from: a}, prompt: x, start_time: 5, duration: 2}
"""
    [error] = errors(tmp_path, body)
    assert "5s to 7s is past the end of 'a'" in error and "6 s long" in error
    section = check(tmp_path, body).errors[0]
    assert section.location.key_path == ("nodes", "b", "duration")


def test_a_retake_needs_its_section_on_the_node(tmp_path: Path) -> None:
    found = errors(
        tmp_path,
        "nodes:\n  a: {kind: t2v, model: ltx-2-pro, prompt: x}\n"
        "  b: {kind: retake, model: ltx-2-pro, video: {from: a}, prompt: x}\n",
    )
    assert any("start_time" in e for e in found) and any("duration" in e for e in found)


def test_ltx2_inputs_take_no_conditioning_options(tmp_path: Path) -> None:
    [error] = errors(
        tmp_path,
        """nodes:
  a: {kind: t2v, model: ltx-2-19b, prompt: x}
  b: {kind: extend, model: ltx-2-19b, video: {from: a, strength: 0.5}, prompt: x}
""",
    )
    assert "it takes only video_url" in error and "video_strength" in error


def test_a_value_of_another_family_is_checked_against_the_nodes_endpoint(tmp_path: Path) -> None:
    [error] = errors(
        tmp_path, "nodes:\n  a: {kind: t2v, model: ltx-2-pro, prompt: x, duration: 12}\n"
    )
    assert "duration" in error and "6, 8 or 10" in error
    c = compiled(tmp_path, "nodes:\n  a: {kind: t2v, model: ltx-2-fast, prompt: x, duration: 12}\n")
    assert c.steps["a"].timing is not None and c.steps["a"].timing.seconds == 12


def test_lint_from_fals_pages(tmp_path: Path) -> None:
    assert warnings(
        tmp_path,
        """nodes:
  a: {kind: t2v, model: ltx-2-fast, prompt: x, duration: 12, fps: 50}
  b: {kind: t2v, model: ltx-2-fast, prompt: x}
  c: {kind: i2v, model: ltx-2-19b, image: {keyframe: mara.front}, prompt: x, seed: 1}
  d: {kind: extend, model: ltx-2-19b, video: {from: c}, prompt: x, enable_prompt_expansion: true}
""",
    ) == [
        "lint.assumed-size",  # c: video_size auto on a keyframe of unknown size
        "lint.assumed-size",  # d: follows c, whose size is assumed
        "lint.expand-prompt",
        "lint.fast-long-clip",
        "lint.long-clip",  # 12 s: identity drifts
        "lint.unseeded",  # said once for the endpoint, not per node
    ]


def test_lint_names_the_replacement_of_a_deprecated_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = registry()
    gone = Deprecation("ltx-0.9.7-distilled", "fal's page says so")
    monkeypatch.setattr(reg, "deprecated", {"fal-ai/ltx-video-13b-dev": gone})
    result = check(tmp_path, "nodes:\n  a: {kind: t2v, model: ltx-0.9.7-dev, prompt: x}\n")
    [warning] = [w for w in result.warnings if w.code == "lint.deprecated"]
    assert "fal marks fal-ai/ltx-video-13b-dev deprecated" in warning.message
    assert warning.hint is not None and "use ltx-0.9.7-distilled" in warning.hint


def test_frames_of_an_ltx2_clip_give_an_exact_size_downstream(tmp_path: Path) -> None:
    c = compiled(
        tmp_path,
        """nodes:
  a: {kind: t2v, model: ltx-2-pro, prompt: x}
  f: {kind: frame, video: {from: a}, at: last}
  b: {kind: i2v, model: ltx-2-19b, image: {from: f}, prompt: x, seed: 1}
""",
    )
    estimate = c.steps["b"].estimate
    assert estimate is not None and not estimate.assumed
    assert (estimate.inputs["width"], estimate.inputs["height"]) == (1920, 1080)


def test_a_negative_prompt_only_where_the_endpoint_takes_one(tmp_path: Path) -> None:
    body = """defaults: {negative_prompt: {template: negative/default.j2}}
nodes:
  a: {kind: t2v, model: ltx-2-pro, prompt: x}
  b: {kind: t2v, model: ltx-2-19b, prompt: x}
"""
    c = compiled(tmp_path, body)
    assert c.steps["a"].body is not None and "negative_prompt" not in c.steps["a"].body
    assert c.steps["b"].body is not None and "worst quality" in c.steps["b"].body["negative_prompt"]
    result = check(tmp_path, body)
    [skipped] = [w for w in result.warnings if w.code == "lint.param-skipped"]
    assert "fal-ai/ltx-2/text-to-video does not take" in skipped.message
    [error] = errors(
        tmp_path, "nodes:\n  a: {kind: t2v, model: ltx-2-fast, prompt: x, negative_prompt: blur}\n"
    )
    assert "takes no negative prompt" in error


def test_takes_of_an_unseeded_endpoint_must_differ_by_what_they_change(tmp_path: Path) -> None:
    """LTX-2 Pro takes no seed: `takes: 2` would be one request twice, paid once, shown as two."""
    [error] = errors(tmp_path, "nodes:\n  a: {kind: t2v, model: ltx-2-pro, prompt: x, takes: 2}\n")
    assert "takes 1 and 2 of 'a' are the same request" in error
    assert "takes no seed" in error
    body = """nodes:
  a:
    kind: t2v
    model: ltx-2-pro
    prompt: Rain on a rooftop.
    takes: [{}, {prompt: Rain on a rooftop at dawn.}]
"""
    steps = compiled(tmp_path, body).steps
    assert steps["a#1"].key != steps["a#2"].key and steps["a"].key == steps["a#1"].key
