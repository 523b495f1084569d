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
NODE_DEFS = ("T2VNode", "I2VNode", "ExtendNode", "MultiConditionNode")


# Examples for fields whose fal schema has neither an example nor a default.
EXAMPLES = {
    "path": "https://example.com/loras/style.safetensors",
    "weight_name": "pytorch_lora_weights.safetensors",
}


def _merge(into: dict[str, Any], spec: dict[str, Any], family: str, name: str) -> None:
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
    for bound, pick in (("minimum", min), ("exclusiveMinimum", min), ("maximum", max)):
        if bound in spec and bound in into:
            into[bound] = pick(into[bound], spec[bound])
        elif bound in into and bound not in spec:
            del into[bound]
    if "enum" in into:
        into["enum"] += [v for v in spec.get("enum", []) if v not in into["enum"]]
    if "multipleOf" in into and into["multipleOf"] != spec.get("multipleOf"):
        del into["multipleOf"]


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


def collect() -> dict[str, dict[str, Any]]:
    """Union of top-level params, video/extend/image conditioning fields and LoRA fields."""
    groups: dict[str, dict[str, dict[str, Any]]] = {
        "params": {},
        "extend_video": {},
        "video_condition": {},
        "image_condition": {},
        "lora": {},
    }
    families: dict[str, set[str]] = {group: set() for group in groups}
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
                _merge(target, copy.deepcopy(spec), endpoint.family, name)
    return {group: _finish(params, len(families[group])) for group, params in groups.items()}


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
