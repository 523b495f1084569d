"""Warnings from the production guide that no other tool gives: they do not stop a run.

- Prompt expansion (``expand_prompt``, LTX-2's ``enable_prompt_expansion``) on shots that
  must keep continuity (extend, multicondition, video-to-video, retake, shots of a
  character): fal rewrites the prompt and adds details mid-scene.
- More than one action beat in a prompt: one clip, one beat.
- LoRAs: at most one character and one style LoRA, weights about 0.4-0.7.
- Clip length: long clips drift; LTX makes 8k+1 frames.
- A user preset or default that the node's endpoint does not take (it is left out).
- A text-to-video shot of a character: T2V cannot hold identity.

And what fal's own pages say: an endpoint fal marks deprecated (with its replacement), an
endpoint that takes no seed (a re-render is a new take), LTX-2 Fast's clips over 10 s (only
at 1080p and 25 fps), and a per-megapixel price whose frame size is assumed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from runner.compile.steps import Compiled, Step
from runner.errors import Diagnostics
from runner.ltx.registry import registry
from runner.pipeline.records import Node, a

if TYPE_CHECKING:
    from runner.compile.reuse import Reuse

LORA_SCALE_RANGE = (0.4, 0.7)
FAL_LORA_SCALE = 1.0
_SEQUENCE = re.compile(r"\b(then|after that|afterwards|finally|followed by|before|next,)\b", re.I)
_ACTION = re.compile(r"action:\s*(.*?)(?:\.\s+[A-Z][a-z]+:|$)", re.I | re.S)


# Said once per pipeline (per message), not once per shot.
_ONCE = ("lint.lora", "lint.unseeded", "lint.deprecated")
# Kinds that continue or follow another clip: the prompt must not add to it.
_CONTINUITY = ("extend", "multicondition", "v2v", "retake")
_EXPANSION = ("expand_prompt", "enable_prompt_expansion")


def lint(compiled: Compiled, diags: Diagnostics, reuse: Reuse | None = None) -> None:
    """Add the guide's warnings for every compiled generation step. A step ``reuse`` took
    from an earlier compile has the findings of its node it had then (a node's own
    findings read only its record and its step); which ones are said once per pipeline,
    and what presets and defaults set that an endpoint does not take, are told anew."""
    pipeline = compiled.pipeline
    skipped: set[tuple[str, str, str]] = set()
    said: set[tuple[str, str]] = set()
    for step in compiled.steps.values():
        if step.endpoint is None or step.body is None or step.takes:
            continue  # a node with takes is linted take by take
        node = pipeline.nodes[step.node]
        found = reuse.warnings(step.node) if reuse is not None else None
        if found is None:
            found = tuple(_node_warnings(node, step))
        if reuse is not None:
            reuse.warned[step.node] = found
        for code, message, hint in found:
            if code.startswith(_ONCE) and (code, message) in said:
                continue  # a character's or the defaults' LoRAs, an endpoint: said once
            said.add((code, message))
            diags.warning(code, message, pipeline.source.locate(node.key_path, key=True), hint)
        negative = pipeline.defaults.negative_prompt
        left_out = ("defaults", "negative_prompt", step.endpoint.id)
        taken = step.endpoint.schema.field("negative_prompt") is not None
        if negative is not None and not taken and left_out not in skipped:
            skipped.add(left_out)
            diags.warning(
                "lint.param-skipped",
                f"defaults sets 'negative_prompt', which {step.endpoint.id} does not take; "
                "it is left out of the request",
                pipeline.source.locate(negative.key_path, key=True),
                "LTX-2 Pro, Fast and retake take no negative prompt",
            )
        for key, setting in step.settings.items():
            if key in step.body:
                continue  # taken: the common case, and nothing to say
            user_layer = setting.layer == "defaults" or (
                setting.layer.startswith("preset:")
                and pipeline.presets[setting.layer.split(":", 1)[1]].origin != "built-in"
            )
            marker = (setting.layer, key, step.endpoint.id)
            if user_layer and marker not in skipped:
                skipped.add(marker)
                diags.warning(
                    "lint.param-skipped",
                    f"{setting.layer} sets '{key}', which {step.endpoint.id} does not take; "
                    "it is left out of the request",
                    setting.location,
                    "presets and defaults are portable; set it per node to make it an error",
                )


def _node_warnings(node: Node, step: Step) -> Iterable[tuple[str, str, str]]:
    assert step.body is not None and step.endpoint is not None
    body = step.body
    continuity = node.kind in _CONTINUITY or step.character is not None
    for flag in _EXPANSION:
        if body.get(flag) is True and continuity:
            yield (
                "lint.expand-prompt",
                f"{flag} is on for a {_shot_kind(node, step)}: fal would add details mid-scene",
                f"set {flag}: false; expand prompts upstream with your own templates",
            )
    if node.kind == "t2v" and step.character is not None:
        yield (
            "lint.t2v-identity",
            f"a text-to-video shot of '{step.character}' cannot hold their identity",
            "start the shot from a keyframe with kind: i2v",
        )
    beats = _extra_beats(str(body.get("prompt", "")))
    if beats:
        yield (
            "lint.action-beats",
            f"the prompt has more than one action beat ({beats})",
            "one clip, one beat: split the action into shots or extend hops",
        )
    yield from _lora_warnings(body.get("loras") or [], node)
    yield from _length_warnings(step)
    yield from _fal_warnings(step)


def _fal_warnings(step: Step) -> Iterable[tuple[str, str, str]]:
    """What fal's own pages say about an endpoint and a request."""
    assert step.body is not None and step.endpoint is not None
    endpoint, body = step.endpoint, step.body
    deprecated = registry().deprecation(endpoint.id)
    if deprecated is not None:
        yield (
            "lint.deprecated",
            f"fal marks {endpoint.id} deprecated",
            f"use {deprecated.replacement} ({deprecated.source})",
        )
    if not endpoint.seeded:
        yield (
            "lint.unseeded",
            f"{endpoint.id} takes no seed: a re-render is a new take, not the same one",
            "the store and the lockfile keep the take you render; ltx-2-19b pins a seed",
        )
    duration = body.get("duration")
    if (
        endpoint.family == "ltx-2-fast"
        and isinstance(duration, int | float)
        and duration > 10
        and (body.get("resolution") != "1080p" or body.get("fps") != 25)
    ):
        yield (
            "lint.fast-long-clip",
            f"a {duration:g} s clip at {body.get('resolution')} and {body.get('fps')} fps",
            "fal's LTX-2 Fast makes clips over 10 s only at 1080p and 25 fps",
        )
    estimate = step.estimate
    if estimate is not None and estimate.unit == "per megapixel" and estimate.assumed:
        size = f"{estimate.inputs.get('width')}x{estimate.inputs.get('height')}"
        yield (
            "lint.assumed-size",
            f"the price assumes {size}: video_size auto follows an input whose size is "
            "known only once it exists",
            "set video_size (a preset such as landscape_16_9, or {width, height}) to price "
            "it exactly",
        )


def _shot_kind(node: Node, step: Step) -> str:
    if node.kind in _CONTINUITY:
        return f"{a(node.kind)} shot"
    return f"shot of '{step.character}'"


def _extra_beats(prompt: str) -> str | None:
    match = _ACTION.search(prompt)
    action = match.group(1) if match else prompt
    connector = _SEQUENCE.search(action)
    if connector:
        return f"'{connector.group(1)}'"
    if match and action.count(",") >= 2:
        return f"{action.count(',') + 1} clauses in the action"
    return None


def _lora_warnings(loras: list[dict[str, object]], node: Node) -> Iterable[tuple[str, str, str]]:
    roles = {lora.path: lora.role for lora in node.loras}
    if len(loras) > 2:
        yield (
            "lint.lora-count",
            f"{len(loras)} LoRAs on one shot",
            "prefer one character LoRA plus one style LoRA; more make motion stiff",
        )
    for role in ("character", "style"):
        count = sum(1 for r in roles.values() if r == role)
        if count > 1:
            yield (
                "lint.lora-count",
                f"{count} {role} LoRAs on one shot",
                f"prefer at most one {role} LoRA per shot",
            )
    low, high = LORA_SCALE_RANGE
    for lora in loras:
        raw = lora.get("scale", FAL_LORA_SCALE)
        scale = float(raw) if isinstance(raw, int | float) else FAL_LORA_SCALE
        if not low <= scale <= high:
            shown = f"{scale:g}" + (" (fal's default)" if "scale" not in lora else "")
            yield (
                "lint.lora-weight",
                f"LoRA {lora.get('path')} has scale {shown}",
                f"start around {low}-{high}; lower it if motion looks stiff",
            )


def _length_warnings(step: Step) -> Iterable[tuple[str, str, str]]:
    timing = step.timing
    if timing is None or timing.assumed or timing.num_frames is None or step.endpoint is None:
        return
    frames = timing.num_frames
    family = registry().family(step.endpoint.family)
    seconds, cap = timing.seconds, family.long_clip_seconds
    if cap is not None and seconds is not None and seconds > cap:
        yield (
            "lint.long-clip",
            f"a {seconds:g} s clip: identity drifts with length",
            f"prefer shots of up to {cap:g} s, joined by extends or cuts",
        )
    elif family.long_clip_frames is not None and frames > family.long_clip_frames:
        yield (
            "lint.long-clip",
            f"{frames} frames in one clip: identity drifts with length",
            f"prefer 4-5 s segments (up to {family.long_clip_frames} frames) joined by extend hops",
        )
    requested = step.body.get("num_frames") if step.body is not None else None
    follows_input = (
        step.kind == "v2v" and step.body is not None and step.body.get("match_video_length", True)
    )
    if isinstance(requested, int) and not follows_input and (requested - 1) % 8:
        frames = requested
        yield (
            "lint.frame-count",
            f"num_frames {frames} is not of the form 8k+1",
            f"LTX generates 8k+1 frames; use {((frames - 1) // 8) * 8 + 1} or "
            f"{((frames - 1) // 8 + 1) * 8 + 1}",
        )
