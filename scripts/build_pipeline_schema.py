#!/usr/bin/env python3
"""Build schemas/pipeline.schema.json from its hand-written base and the endpoint registry.

The base (scripts/pipeline_schema_base.yaml) describes the pipeline format. This script adds
what must follow fal: every fal parameter a pipeline may set (the union over all endpoints of
the registry, with fal's descriptions and the widest range; the endpoint's own schema checks
the exact range at compile time), the conditioning options of extend and multicondition
inputs, LoRA fields, and the model family names. A test checks the committed file is current.

A generation node takes the parameters of its own endpoint only, so a node's keys follow its
model family: the node's own ``model``, else the pipeline's, else the default family. The
schema says so with ``if``/``then`` on ``model`` at the top and on each node, which is what
editors follow for completion: a 0.9.7 node is not offered ``guidance_scale``. Presets and
``defaults`` are portable across families and keep the union.

No fractional ``multipleOf``: standard validators test it in binary floating point and reject
0.3 as "not a multiple of 0.05"; ``validate`` checks the step exactly against fal's schema.

    .venv/bin/python scripts/build_pipeline_schema.py [--check]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runner.ltx.registry import GENERATION_KINDS, registry  # noqa: E402
from runner.ltx.schema import load_raw  # noqa: E402

OUT = ROOT / "schemas" / "pipeline.schema.json"
PRESETS_OUT = ROOT / "schemas" / "presets.schema.json"
BASE = ROOT / "scripts" / "pipeline_schema_base.yaml"

# Request fields shotgraph fills itself from the node's structure.
STRUCTURAL = {
    "prompt",
    "negative_prompt",
    "image_url",
    "video",
    "images",
    "videos",
    "loras",
    "seed",
}
REF_FIELDS = {"image_url", "video_url"}
NODE_DEFS = ("T2VNode", "I2VNode", "ExtendNode", "MultiConditionNode", "V2VNode", "RetakeNode")


# Examples for fields whose fal schema has neither an example nor a default.
EXAMPLES = {
    "path": "https://example.com/loras/style.safetensors",
    "weight_name": "pytorch_lora_weights.safetensors",
}


def _merge(into: dict[str, Any], spec: dict[str, Any], family: str, name: str) -> None:
    """Widen ``into`` (the parameter as known so far) to take what ``spec`` takes too."""
    step = spec.get("multipleOf")
    if step is not None and not float(step).is_integer():
        spec.pop("multipleOf")
        spec["description"] = spec.get("description", "").rstrip(".") + f". A multiple of {step}."
    if not into:
        into.update({k: v for k, v in spec.items() if k not in ("title", "default")})
        into["x-families"] = [family]
        if "examples" not in into and "default" in spec:
            into["examples"] = [spec["default"]]
        elif "examples" not in into and name in EXAMPLES:
            into["examples"] = [EXAMPLES[name]]
        return
    if family not in into["x-families"]:
        into["x-families"].append(family)
    if "anyOf" in into:
        return  # a union (video_size): its members are gathered by _union
    if {into.get("type"), spec.get("type")} == {"integer", "number"}:
        into["type"] = "number"
    if "enum" in into and "enum" in spec:
        into["enum"] += [v for v in spec["enum"] if v not in into["enum"]]
        return
    if "enum" in into or "enum" in spec:
        _enum_and_range(into, spec)
        return
    for bound, pick in (("minimum", min), ("exclusiveMinimum", min), ("maximum", max)):
        if bound in spec and bound in into:
            into[bound] = pick(into[bound], spec[bound])
        elif bound in into and bound not in spec:
            del into[bound]
    if "multipleOf" in into and into["multipleOf"] != spec.get("multipleOf"):
        del into["multipleOf"]


def _enum_and_range(into: dict[str, Any], spec: dict[str, Any]) -> None:
    """A list of values on one endpoint, a range on another (LTX-2 Pro's `duration` 6, 8, 10
    and retake's 2 to 20 s): the range, stretched to hold the values."""
    values = into.pop("enum", None) or spec["enum"]
    ranged = spec if "enum" not in spec else into
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    for bound, pick in (("minimum", min), ("maximum", max)):
        if bound in ranged and numbers:
            into[bound] = pick(ranged[bound], *numbers)
        else:
            into.pop(bound, None)


def _optional(spec: dict[str, Any]) -> dict[str, Any]:
    """``anyOf: [X, null]`` (an optional field, say LTX-2's `weight_name`) as X: a pipeline
    leaves an optional field out rather than writing null."""
    members = [m for m in spec.get("anyOf", []) if m.get("type") != "null"]
    if len(members) != 1:
        return spec
    return {**members[0], **{k: v for k, v in spec.items() if k != "anyOf"}}


def _union(
    unions: dict[str, dict[str, Any]], name: str, spec: dict[str, Any], raw: dict[str, Any]
) -> None:
    """Gather a parameter that is an object or a name (LTX-2 19B's `video_size`): the object's
    fields and every name, for one definition the pipeline's validator can check."""
    found = unions.setdefault(name, {"properties": {}, "names": []})
    for member in spec["anyOf"]:
        if "$ref" in member:
            target = raw["$defs"][member["$ref"].rsplit("/", 1)[1]]
            for field, field_spec in target["properties"].items():
                kept = {k: v for k, v in field_spec.items() if k not in ("title", "default")}
                kept["examples"] = [field_spec.get("default")]
                found["properties"].setdefault(field, kept)
        names = member.get("enum", [])
        found["names"] += [n for n in names if n not in found["names"]]


def _finish(params: dict[str, dict[str, Any]], all_families: int) -> dict[str, Any]:
    out = {}
    for name in sorted(params):
        spec = params[name]
        families = spec.pop("x-families")
        if len(families) < all_families:
            spec["description"] = (
                spec.get("description", "").rstrip(".") + f". Only on: {', '.join(families)}."
            )
        spec.pop("items", None) if spec.get("type") != "array" else None
        out[name] = spec
    return out


def _object_fields(raw: dict[str, Any], ref: str) -> dict[str, Any]:
    target = ref.rsplit("/", 1)[1]
    fields: dict[str, Any] = raw["$defs"][target]["properties"]
    return fields


def collect() -> dict[str, Any]:
    """Union of top-level params, video/extend/image conditioning fields and LoRA fields."""
    groups: dict[str, dict[str, dict[str, Any]]] = {
        "params": {},
        "extend_video": {},
        "video_condition": {},
        "image_condition": {},
        "lora": {},
    }
    families: dict[str, set[str]] = {group: set() for group in groups}
    unions: dict[str, dict[str, Any]] = {}
    reg = registry()
    # The default family first, so its descriptions are the ones shown.
    ordered = sorted(reg.endpoints(), key=lambda e: (e.family != reg.default_family, e.family))
    for endpoint in ordered:
        raw = dict(load_raw(endpoint.id))
        props = raw["properties"]
        sources = [("params", props)]
        if "video" in props:
            sources.append(("extend_video", _object_fields(raw, _ref(props["video"]))))
        if "videos" in props:
            sources.append(
                ("video_condition", _object_fields(raw, props["videos"]["items"]["$ref"]))
            )
        if "images" in props:
            sources.append(
                ("image_condition", _object_fields(raw, props["images"]["items"]["$ref"]))
            )
        if "loras" in props:
            sources.append(("lora", _object_fields(raw, props["loras"]["items"]["$ref"])))
        for group, fields in sources:
            families[group].add(endpoint.family)
            for name, spec in fields.items():
                if (group == "params" and name in STRUCTURAL) or name in REF_FIELDS:
                    continue
                target = groups[group].setdefault(name, {})
                spec = _optional(spec)
                if "anyOf" in spec:
                    _union(unions, name, spec, raw)
                _merge(target, copy.deepcopy(spec), endpoint.family, name)
    collected = {group: _finish(params, len(families[group])) for group, params in groups.items()}
    for name in unions:
        union = collected["params"][name]
        union.pop("anyOf")
        union["$ref"] = f"#/$defs/{_def_name(name)}"
    collected["unions"] = unions
    return collected


def _def_name(param: str) -> str:
    return "".join(part.title() for part in param.split("_"))


def _union_def(name: str, found: dict[str, Any]) -> dict[str, Any]:
    """An object or a name, without anyOf (the pipeline's validator does not take it)."""
    return {
        "description": f"`{name}`: one of the names, or an object with "
        + ", ".join(found["properties"])
        + ".",
        "type": ["string", "object"],
        "additionalProperties": False,
        "properties": found["properties"],
        "if": {"type": "string"},
        "then": {"enum": found["names"]},
        "examples": [
            found["names"][0],
            {k: v.get("default") for k, v in found["properties"].items()},
        ],
    }


def _ref(spec: dict[str, Any]) -> str:
    ref = spec.get("$ref") or spec["allOf"][0]["$ref"]
    return str(ref)


def build() -> dict[str, Any]:
    schema: dict[str, Any] = yaml.safe_load(BASE.read_text())
    defs = schema["$defs"]
    groups = collect()
    defs["ModelFamily"] = {
        "description": "An LTX model family; each maps node kinds to fal endpoints.",
        "enum": sorted(registry().families),
        "examples": [registry().default_family],
    }
    params = groups["params"]
    for name, found in groups["unions"].items():
        defs[_def_name(name)] = _union_def(name, found)
    for name in ("Preset", "Defaults", "Take"):
        defs[name]["properties"].update(copy.deepcopy(params))
    defs["Take"]["additionalProperties"] = False
    for name, spec in params.items():
        defs[f"Param.{name}"] = copy.deepcopy(spec)
    generation = defs.pop("GenerationFields")["properties"]
    kinds = {name: defs.pop(name) for name in NODE_DEFS}
    defs.update(_family_nodes(kinds, generation, params))
    schema["allOf"] = _by_pipeline_model()
    video_ref = defs["VideoRef"]["properties"]
    image_ref = defs["ImageRef"]["properties"]
    defs["ExtendVideo"] = _conditioning(
        "The clip to extend (a video reference) and fal's conditioning options for it.",
        video_ref,
        groups["extend_video"],
        {"from": "intro", "strength": 1},
    )
    defs["VideoCondition"] = _conditioning(
        "A conditioning video (a video reference) with fal's options for it.",
        video_ref,
        groups["video_condition"],
        {"motion": "orbit", "strength": 0.8},
    )
    defs["ImageCondition"] = _conditioning(
        "A conditioning image (an image reference) with its start frame and strength.",
        image_ref,
        groups["image_condition"],
        {"keyframe": "mara.front_closeup", "start_frame_num": 0},
    )
    defs["ClipRef"] = {
        "description": "A clip of a stitch: a node name, or a video reference like {file: path}.",
        "type": ["string", "object"],
        "pattern": defs["Name"]["pattern"],
        "additionalProperties": False,
        "properties": copy.deepcopy(video_ref),
        "examples": ["intro_more", {"motion": "orbit"}],
    }
    lora = groups["lora"]
    lora["role"] = {
        "description": "What the LoRA is for (shotgraph only; not sent to fal). Lint uses it.",
        "enum": ["character", "style", "wardrobe"],
        "examples": ["style"],
    }
    defs["Lora"] = {
        "description": "A LoRA adapter: weights and how strongly to apply them.",
        "type": "object",
        "additionalProperties": False,
        "required": ["path"],
        "properties": lora,
        "examples": [{"path": "https://example.com/style.safetensors", "scale": 0.5}],
    }
    schema["$defs"] = dict(sorted(defs.items()))
    return schema


def _family_nodes(
    kinds: dict[str, dict[str, Any]], generation: dict[str, Any], params: dict[str, Any]
) -> dict[str, Any]:
    """Per family: a node of each kind it has, with its endpoint's parameters; the node of a
    pipeline on that family (``NodeIn``), and a node rendered with it (``NodeOn``)."""
    reg = registry()
    out: dict[str, Any] = {}
    for family_name, family in sorted(reg.families.items()):
        on: list[dict[str, Any]] = []
        for kind, def_name in zip(GENERATION_KINDS, NODE_DEFS, strict=True):
            if kind not in family.endpoints:
                continue
            endpoint = reg.endpoint(family_name, kind)
            takes = dict(load_raw(endpoint.id))["properties"]
            if kind in family.lora_endpoints:
                # The registry picks the `/lora` twin for a node with LoRAs (LTX-2 19B): the
                # node takes what either endpoint takes.
                twin = reg.endpoint(family_name, kind, lora=True)
                takes = {**dict(load_raw(twin.id))["properties"], **takes}
            node = copy.deepcopy(kinds[def_name])
            fields = {k: v for k, v in generation.items() if k != "loras" or "loras" in takes}
            own = node.get("properties", {})
            node["description"] = f"{node['description']} ({family_name}: {endpoint.id})"
            node["properties"] = {
                **copy.deepcopy(fields),
                **{p: {"$ref": f"#/$defs/Param.{p}"} for p in sorted(params) if p in takes},
                **own,
            }
            node["additionalProperties"] = False
            node["x-endpoint"] = endpoint.id
            node["x-family"] = family_name
            out[f"{def_name}.{family_name}"] = node
            on.append(_when_kind(kind, f"#/$defs/{def_name}.{family_name}"))
        out[f"NodeOn.{family_name}"] = {
            "description": f"A generation node rendered with {family_name}.",
            "allOf": on,
        }
        out[f"NodeIn.{family_name}"] = {
            "description": (
                f"A node of a pipeline on {family_name}: its keys follow its own `model`, "
                f"else {family_name}."
            ),
            "allOf": [
                *(
                    {
                        "if": {"properties": {"model": {"const": other}}, "required": ["model"]},
                        "then": {"$ref": f"#/$defs/NodeOn.{other}"},
                    }
                    for other in sorted(reg.families)
                ),
                {"if": _a_known_model(), "else": {"$ref": f"#/$defs/NodeOn.{family_name}"}},
            ],
        }
    return out


def _when_kind(kind: str, ref: str) -> dict[str, Any]:
    return {
        "if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
        "then": {"$ref": ref},
    }


def _by_pipeline_model() -> list[dict[str, Any]]:
    """The top level: a pipeline's nodes follow its ``model`` (else the default family)."""
    reg = registry()

    def nodes_in(family: str) -> dict[str, Any]:
        return {
            "properties": {"nodes": {"additionalProperties": {"$ref": f"#/$defs/NodeIn.{family}"}}}
        }

    return [
        *(
            {
                "if": {"properties": {"model": {"const": name}}, "required": ["model"]},
                "then": nodes_in(name),
            }
            for name in sorted(reg.families)
        ),
        {"if": _a_known_model(), "else": nodes_in(reg.default_family)},
    ]


def _a_known_model() -> dict[str, Any]:
    """A schema true when ``model`` names a family: without one (or with a wrong one, which
    is an error of its own), the node is checked as on the default family, never not at all."""
    return {
        "properties": {"model": {"enum": sorted(registry().families)}},
        "required": ["model"],
    }


def _conditioning(
    description: str, ref_props: dict[str, Any], extra: dict[str, Any], example: dict[str, Any]
) -> dict[str, Any]:
    return {
        "description": description,
        "type": "object",
        "additionalProperties": False,
        "properties": {**copy.deepcopy(ref_props), **copy.deepcopy(extra)},
        "examples": [example],
    }


def presets_schema(pipeline: dict[str, Any]) -> dict[str, Any]:
    """The schema of a preset file (what a pipeline's ``imports:`` names): ``presets:``
    and nothing else, each preset as in a pipeline."""
    defs = pipeline["$defs"]
    return {
        "$schema": pipeline["$schema"],
        "$id": pipeline["$id"].replace("pipeline.schema.json", "presets.schema.json"),
        "title": "shotgraph preset file",
        "description": (
            "Presets shared by pipelines through `imports:`. Reference: docs/pipeline-format.md "
            "(Presets and precedence)."
        ),
        "type": "object",
        "additionalProperties": False,
        "required": ["presets"],
        "properties": {
            "presets": {
                "description": "Named fal parameters, by preset name.",
                "type": "object",
                "propertyNames": {"$ref": "#/$defs/Name"},
                "additionalProperties": {"$ref": "#/$defs/Preset"},
                "examples": [{"drafts": {"extends": "fast-preview", "expand_prompt": False}}],
            }
        },
        "$defs": {"Name": defs["Name"], "Preset": defs["Preset"]},
    }


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def render_presets() -> str:
    return json.dumps(presets_schema(build()), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build schemas/pipeline.schema.json")
    parser.add_argument("--check", action="store_true", help="fail if the file is out of date")
    args = parser.parse_args(argv)
    outputs = {OUT: render(), PRESETS_OUT: render_presets()}
    if args.check:
        stale = [p for p, text in outputs.items() if not p.exists() or p.read_text() != text]
        for path in stale:
            print(f"{path} is out of date: run scripts/build_pipeline_schema.py", file=sys.stderr)
        return 1 if stale else 0
    for path, text in outputs.items():
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
