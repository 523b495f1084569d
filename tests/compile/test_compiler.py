"""Nodes to exact fal requests: layering, explicit parameters, shapes, seeds, keys."""

from __future__ import annotations

from pathlib import Path

from runner.compile.check import check_pipeline
from runner.compile.keys import derived_seed
from tests.helpers import HEAD, compiled, write


def test_precedence_fal_default_preset_defaults_node(tmp_path: Path) -> None:
    c = compiled(
        tmp_path,
        """defaults: {preset: cinematic-5s, frame_rate: 30, num_frames: 97}
nodes:
  a: {kind: t2v, prompt: x, num_frames: 81}
""",
    )
    step = c.steps["a"]
    assert step.body is not None
    assert step.body["num_frames"] == 81  # node
    assert step.body["frame_rate"] == 30  # pipeline defaults over the preset's 24
    assert step.body["resolution"] == "720p"  # preset
    assert step.body["enable_safety_checker"] is True  # fal's default, written out
    assert step.settings["num_frames"].layer == "node"
    assert step.settings["frame_rate"].layer == "defaults"
    assert step.settings["resolution"].layer == "preset:cinematic-5s"


def test_every_parameter_is_sent_explicitly(tmp_path: Path) -> None:
    c = compiled(tmp_path, "nodes:\n  a: {kind: t2v, prompt: x}\n")
    step = c.steps["a"]
    assert step.endpoint is not None and step.body is not None
    assert set(step.endpoint.schema.names) <= set(step.body)


def test_preset_extends_and_imports(tmp_path: Path) -> None:
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "studio.yaml").write_text(
        "presets:\n  house: {extends: cinematic-5s, resolution: 480p}\n"
    )
    c = compiled(
        tmp_path,
        """imports: [presets/studio.yaml]
presets:
  mine: {extends: house, num_frames: 97}
nodes:
  a: {kind: t2v, preset: mine, prompt: x}
""",
    )
    body = c.steps["a"].body
    assert body is not None
    assert (body["resolution"], body["num_frames"], body["frame_rate"]) == ("480p", 97, 24)


def test_presets_are_portable_across_families(tmp_path: Path) -> None:
    """cinematic-5s sets first_pass_skip_final_steps, which 0.9.8 does not take: left out."""
    c = compiled(
        tmp_path,
        """model: ltx-0.9.8-distilled
defaults: {preset: cinematic-5s}
nodes:
  a: {kind: t2v, prompt: x}
""",
    )
    body = c.steps["a"].body
    assert body is not None and "first_pass_skip_final_steps" not in body
    assert body["first_pass_num_inference_steps"] == 9


def test_request_shapes(tmp_path: Path) -> None:
    c = compiled(
        tmp_path,
        """nodes:
  shot: {kind: i2v, image: {keyframe: mara.front}, prompt: x}
  more: {kind: extend, video: {from: shot, strength: 0.9}, prompt: y}
  multi:
    kind: multicondition
    image: {keyframe: mara.front}
    videos: [{motion: orbit, start_frame_num: 8}]
    prompt: z
  still: {kind: frame, video: {from: more}, at: last}
  cut: {kind: stitch, clips: [shot, more, {motion: orbit}]}
""",
    )
    shot, more, multi = (c.steps[n].body for n in ("shot", "more", "multi"))
    assert shot is not None and more is not None and multi is not None
    assert shot["image_url"].startswith("sha256:")
    assert more["video"]["video_url"] == "node:shot" and more["video"]["strength"] == 0.9
    assert more["video"]["conditioning_type"] == "rgb"  # fal default, explicit
    assert multi["images"][0]["image_url"] == shot["image_url"]
    assert multi["videos"][0]["start_frame_num"] == 8
    assert c.steps["more"].deps == ("shot",)
    assert c.steps["cut"].deps == ("shot", "more")
    assert c.graph.order.index("shot") < c.graph.order.index("more") < c.graph.order.index("cut")


def test_seeds_are_pinned(tmp_path: Path) -> None:
    c = compiled(
        tmp_path, "nodes:\n  a: {kind: t2v, prompt: x}\n  b: {kind: t2v, prompt: x, seed: 7}\n"
    )
    assert c.steps["a"].seed == derived_seed("a") and c.steps["a"].seed_pinned_by == "derived"
    assert c.steps["b"].body is not None and c.steps["b"].body["seed"] == 7
    assert derived_seed("a") == derived_seed("a") != derived_seed("b")


def test_keys_follow_content_not_names_or_layout(tmp_path: Path) -> None:
    base = "nodes:\n  a: {kind: i2v, image: {keyframe: mara.front}, prompt: x, seed: 1}\n"
    first = compiled(tmp_path / "1", base).steps["a"].key
    # the same request written differently: same key
    moved = (
        compiled(
            tmp_path / "2",
            "nodes:\n  a:\n    kind: i2v\n    seed: 1\n"
            "    prompt: x\n    image: {keyframe: mara.front}\n",
        )
        .steps["a"]
        .key
    )
    assert moved == first
    # backend is part of the key
    assert compiled(tmp_path / "3", base, backend="local").steps["a"].key != first
    # the keyframe's bytes are part of the key
    path = write(tmp_path / "4", base)
    (tmp_path / "4" / "assets" / "key.png").write_bytes(b"\x89PNG other bytes")
    changed = check_pipeline(path).require().steps["a"].key
    assert changed != first


def test_upstream_key_flows_downstream(tmp_path: Path) -> None:
    body = "nodes:\n  a: {kind: t2v, prompt: PROMPT, seed: 1}\n  b: {kind: extend, video: {from: a}, prompt: y}\n"
    one = compiled(tmp_path / "1", body.replace("PROMPT", "one")).steps
    two = compiled(tmp_path / "2", body.replace("PROMPT", "two")).steps
    assert one["a"].key != two["a"].key and one["b"].key != two["b"].key
    # renaming the upstream node (and the reference) keeps the downstream key
    renamed = (
        body.replace("PROMPT", "one").replace("  a:", "  first:").replace("from: a", "from: first")
    )
    assert compiled(tmp_path / "3", renamed).steps["b"].key == one["b"].key


def test_template_edit_that_renders_the_same_keeps_the_key(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir(parents=True)
    (templates / "mine.j2").write_text("A shot of {{ who }}.")
    body = "nodes:\n  a: {kind: t2v, prompt: {template: mine.j2, vars: {who: Mara}}, seed: 1}\n"
    before = compiled(tmp_path, body).steps["a"].key
    (templates / "mine.j2").write_text("{# reformatted #}\nA shot of\n   {{ who }}.\n")
    assert compiled(tmp_path, body).steps["a"].key == before
    (templates / "mine.j2").write_text("A wide shot of {{ who }}.")
    assert compiled(tmp_path, body).steps["a"].key != before


def test_pipeline_templates_take_precedence(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir(parents=True)
    (templates / "continue.j2").write_text("Our own continuation.")
    c = compiled(tmp_path, "nodes:\n  a: {kind: t2v, prompt: {template: continue.j2}}\n")
    assert c.steps["a"].body is not None and c.steps["a"].body["prompt"] == "Our own continuation."


def test_template_variables_from_pipeline_character_and_node(tmp_path: Path) -> None:
    head = HEAD.replace(
        "    description: a woman in a yellow raincoat\n",
        "    description: a woman in a yellow raincoat\n    vars: {mood: calm}\n",
    )
    c = compiled(
        tmp_path,
        """vars: {mood: tense, place: a roof}
nodes:
  a:
    kind: i2v
    image: {keyframe: mara.front}
    prompt: {inline: "{{ character.description }} on {{ place }}, {{ mood }}, {{ node.name }}"}
  b:
    kind: i2v
    image: {keyframe: mara.front}
    prompt: {inline: "{{ mood }}", vars: {mood: joyful}}
""",
        head=head,
    )
    assert c.steps["a"].body is not None and c.steps["b"].body is not None
    assert c.steps["a"].body["prompt"] == "a woman in a yellow raincoat on a roof, calm, a"
    assert c.steps["b"].body["prompt"] == "joyful"
    assert c.steps["a"].character == "mara"


def test_character_loras_and_defaults_loras_merge(tmp_path: Path) -> None:
    head = HEAD.replace(
        "    keyframes: {front: assets/key.png}\n",
        "    keyframes: {front: assets/key.png}\n"
        "    loras: [{path: https://x.test/mara.safetensors, scale: 0.6}]\n",
    )
    c = compiled(
        tmp_path,
        """defaults:
  loras: [{path: https://x.test/style.safetensors, scale: 0.5, role: style}]
nodes:
  a: {kind: i2v, image: {keyframe: mara.front}, prompt: x}
  b: {kind: t2v, prompt: x}
""",
        head=head,
    )
    a, b = c.steps["a"].body, c.steps["b"].body
    assert a is not None and b is not None
    assert [lora["path"] for lora in a["loras"]] == [
        "https://x.test/style.safetensors",
        "https://x.test/mara.safetensors",
    ]
    assert "role" not in a["loras"][0]  # shotgraph's own field is not sent
    assert [lora["path"] for lora in b["loras"]] == ["https://x.test/style.safetensors"]
