#!/usr/bin/env python3
"""Build schemas/pipeline.schema.json from its hand-written base and the endpoint registry.

The base (scripts/pipeline_schema_base.yaml) describes the pipeline format. This script adds
what must follow fal: every fal parameter a pipeline may set (the union over all endpoints of
the registry, with fal's descriptions and the widest range; the endpoint's own schema checks
the exact range at compile time), the conditioning options of extend and multicondition
inputs, LoRA fields, and the model family names. A test checks the committed file is current.

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

from runner.ltx.registry import registry  # noqa: E402
from runner.ltx.schema import load_raw  # noqa: E402

OUT = ROOT / "schemas" / "pipeline.schema.json"
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
    generation = defs.pop("GenerationFields")["properties"]
    for name in NODE_DEFS:
        node = defs[name]
        own = node.get("properties", {})
        node["properties"] = {**copy.deepcopy(generation), **copy.deepcopy(params), **own}
        node["additionalProperties"] = False
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


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build schemas/pipeline.schema.json")
    parser.add_argument("--check", action="store_true", help="fail if the file is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if OUT.read_text() != text:
            print(f"{OUT} is out of date: run scripts/build_pipeline_schema.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
