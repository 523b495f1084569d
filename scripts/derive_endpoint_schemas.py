#!/usr/bin/env python3
"""Derive shotgraph's endpoint schemas from fal's published OpenAPI.

fal publishes one queue OpenAPI document per endpoint. This script takes a bundle of them
(``{"endpoints": {id: {"openapi": {...}}}}``, as in fal-ltx-openapi.json) and writes, for every
endpoint of the families in runner/data/families.yaml (or all of them with ``--all``):

    schemas/endpoints/<endpoint id>.input.json    the request body, as a standalone JSON Schema
    schemas/endpoints/<endpoint id>.output.json   the result body

Each file is self-contained: the components it refers to are copied under ``$defs``.

    python scripts/derive_endpoint_schemas.py path/to/fal-ltx-openapi.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def registry_endpoints() -> list[str]:
    catalog = yaml.safe_load((ROOT / "runner/data/families.yaml").read_text())
    ids: list[str] = []
    for family in catalog["families"].values():
        ids.extend(family["endpoints"].values())
        ids.extend(family.get("lora_endpoints", {}).values())
    return sorted(set(ids))


def _rewrite_refs(value: Any, used: set[str]) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str) and item.startswith("#/components/schemas/"):
                name = item.rsplit("/", 1)[1]
                used.add(name)
                out[key] = f"#/$defs/{name}"
            else:
                out[key] = _rewrite_refs(item, used)
        return out
    if isinstance(value, list):
        return [_rewrite_refs(item, used) for item in value]
    return value


def standalone(components: dict[str, Any], name: str, endpoint: str, role: str) -> dict[str, Any]:
    """The component ``name`` with everything it references gathered under ``$defs``."""
    used: set[str] = set()
    body = _rewrite_refs(components[name], used)
    defs: dict[str, Any] = {}
    pending = sorted(used)
    while pending:
        dep = pending.pop()
        if dep in defs:
            continue
        found: set[str] = set()
        defs[dep] = _rewrite_refs(components[dep], found)
        pending.extend(sorted(found - defs.keys()))
    schema = {
        "$schema": DIALECT,
        "$id": f"https://shotgraph.dev/schemas/endpoints/{endpoint}.{role}.json",
        "x-fal-endpoint": endpoint,
        "x-fal-component": name,
        **body,
    }
    if defs:
        schema["$defs"] = dict(sorted(defs.items()))
    return schema


def derive(openapi: dict[str, Any], endpoint: str) -> tuple[dict[str, Any], dict[str, Any]]:
    paths = openapi["paths"]
    components = openapi["components"]["schemas"]
    submit = paths[f"/{endpoint}"]["post"]
    input_ref = submit["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    result = paths[f"/{endpoint}/requests/{{request_id}}"]["get"]
    output_ref = result["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    input_name = input_ref.rsplit("/", 1)[1]
    output_name = output_ref.rsplit("/", 1)[1]
    return (
        standalone(components, input_name, endpoint, "input"),
        standalone(components, output_name, endpoint, "output"),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", type=Path, help="fal OpenAPI bundle (fal-ltx-openapi.json)")
    parser.add_argument("--out", type=Path, default=ROOT / "schemas/endpoints")
    parser.add_argument("--all", action="store_true", help="every endpoint in the bundle")
    args = parser.parse_args(argv)

    bundle = json.loads(args.bundle.read_text())
    endpoints = bundle["endpoints"]
    wanted = sorted(endpoints) if args.all else registry_endpoints()
    missing = [e for e in wanted if e not in endpoints]
    if missing:
        print(f"not in the bundle: {', '.join(missing)}", file=sys.stderr)
        return 1
    for endpoint in wanted:
        input_schema, output_schema = derive(endpoints[endpoint]["openapi"], endpoint)
        for role, schema in (("input", input_schema), ("output", output_schema)):
            target = args.out / f"{endpoint}.{role}.json"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
    print(f"wrote {len(wanted)} endpoint schema pairs under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
