"""Checking a document against schemas/pipeline.schema.json, in words a user can act on.

The compiled validator (runner/pipeline/schema_validator.py) finds the errors; this module
turns each into a diagnostic with the file, line, key path and a hint (an unknown key gets a
did-you-mean; a parameter other fal models take but LTX does not gets what LTX uses instead).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from runner.errors import Diagnostics, KeyPath
from runner.ltx.registry import Endpoint, registry
from runner.pipeline.schema_validator import Check, SchemaError, compile_schema
from runner.pipeline.sourcemap import SourceMap
from runner.resources import schemas_dir


@cache
def pipeline_schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((schemas_dir() / "pipeline.schema.json").read_text())
    return data


@cache
def _validator(definition: str | None) -> Check:
    return compile_schema(pipeline_schema(), definition)


def check(
    document: Any,
    source: SourceMap,
    diags: Diagnostics,
    *,
    definition: str | None = None,
    base: KeyPath = (),
    foreign: set[KeyPath] | None = None,
    passed: PassedNodes | None = None,
) -> set[KeyPath]:
    """Check ``document`` (the whole pipeline, or one ``$defs`` entry) and report errors.
    A pipeline's nodes that ``passed`` has seen pass in the same document are not checked
    again.

    Returns the key paths that had errors, so later stages can skip what is broken. With
    ``foreign``, a generation node's fal parameters that its family does not take (or LTX
    never takes) are reported but leave the node whole: their key paths go into
    ``foreign`` for the caller to drop, and the node's other checks still run.
    """
    broken: set[KeyPath] = set()
    errors: list[SchemaError] = []
    checked = document
    if passed is not None and definition is None:
        checked = passed.unchecked(document)
    _validator(definition)(checked, (), errors)
    for error in errors:
        path = (*base, *error.path)
        explained = list(_explain(error))
        if foreign is not None and _only_foreign_params(error, explained):
            foreign.update((*path, key) for key, *_ in explained if key is not None)
        else:
            broken.add(path)
        for key, message, hint, at_key in explained:
            where = (*path, key) if key is not None else path
            code = (
                "forbidden-param" if _is_forbidden(key, error.schema) else f"schema-{error.keyword}"
            )
            diags.error(code, message, source.locate(where, key=at_key), hint)
    return broken


@dataclass
class PassedNodes:
    """Nodes that passed the schema before (this code's schema, within the same pipeline:
    the caller keeps them per memo), by print: the node's name and value, and the rest of
    the document, whose ``model`` decides the node's schema. A node's checks look at that
    and nothing else (the schema has no rule across nodes but the ``nodes`` mapping's own,
    which still run on the names left), so one that passed passes again. The prints of this
    document's nodes are gathered in ``now``."""

    earlier: frozenset[bytes]
    now: list[bytes] = field(default_factory=list)

    def unchecked(self, document: Any) -> Any:
        """``document`` without the nodes that passed before (one is left: ``nodes`` must
        not be empty, and that it is not is no news)."""
        nodes = document.get("nodes") if isinstance(document, dict) else None
        if not isinstance(nodes, dict):
            return document
        rest = repr([(key, value) for key, value in document.items() if key != "nodes"])
        context = hashlib.sha256(rest.encode()).digest()
        left = {}
        for name, value in nodes.items():
            mine = hashlib.sha256(context + repr((name, value)).encode()).digest()
            self.now.append(mine)
            if mine not in self.earlier:
                left[name] = value
        if not left and nodes:
            name = next(iter(nodes))
            left[name] = nodes[name]
        return document | {"nodes": left}


def _only_foreign_params(error: SchemaError, explained: list[tuple[Any, ...]]) -> bool:
    """Whether ``error`` is only about fal parameters a node's endpoint does not take."""
    if error.keyword != "additionalProperties" or "x-endpoint" not in error.schema:
        return False
    defs = pipeline_schema()["$defs"]
    forbidden = registry().forbidden
    return all(
        key in forbidden or key == "loras" or f"Param.{key}" in defs for key, *_ in explained
    )


def _explain(error: SchemaError) -> Iterator[tuple[str | None, str, str | None, bool]]:
    """(key, message, hint, point at the key rather than the value) for one error."""
    kind = error.keyword
    value = error.instance
    schema = error.schema
    if kind == "additionalProperties" and isinstance(value, dict):
        known = sorted(schema.get("properties", {}))
        for key in sorted(set(value) - set(known)):
            yield (key, *_unknown_key(key, known, schema), True)
        return
    if kind == "required" and isinstance(value, dict):
        missing = [k for k in error.expected if k not in value]
        for key in missing:
            yield None, f"missing required key '{key}'", None, False
        return
    if error.in_property_name and isinstance(value, str):
        hint = "names start with a letter or _ and use only letters, digits, _ and -"
        yield value, f"invalid name {json.dumps(value)}", hint, True
        return
    yield None, _message(kind, value, error.expected), _hint(kind, schema), False


def _unknown_key(
    key: str, known: list[str], schema: Mapping[str, Any] | None = None
) -> tuple[str, str | None]:
    # A generation node's keys follow its family (the schema names the endpoint): its
    # family's own word on a parameter first, then one another family takes, named as such.
    endpoint = _endpoint_of(schema)
    if endpoint is not None:
        told = _not_on_endpoint(key, endpoint, schema or {})
        if told is not None:
            return told
    forbidden = registry().forbidden
    if key in forbidden:
        return f"'{key}' is not an LTX parameter", forbidden[key]
    # A reference of the wrong media type: an image reference offered a motion clip, etc.
    for given, gives, needed, instead in (
        ("motion", "a video", "keyframe", "an image"),
        ("keyframe", "an image", "motion", "a video"),
    ):
        if key == given and needed in known:
            sources = ", ".join(
                k for k in ("from", "keyframe", "motion", "file", "url") if k in known
            )
            return f"'{key}' gives {gives}, but {instead} is needed here", f"use one of {sources}"
    import difflib  # here: only a mistyped key needs it, not every start

    close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
    if close:
        return f"unknown key '{key}'", f"did you mean {' or '.join(repr(c) for c in close)}?"
    shown = ", ".join(known[:12]) + (" ..." if len(known) > 12 else "")
    return f"unknown key '{key}'", f"allowed here: {shown}"


def _endpoint_of(schema: Mapping[str, Any] | None) -> Endpoint | None:
    """The endpoint a family's node definition stands for (``x-endpoint``), if it is one."""
    endpoint_id = schema.get("x-endpoint") if schema is not None else None
    return registry().endpoint_by_id(endpoint_id) if isinstance(endpoint_id, str) else None


def _not_on_endpoint(
    key: str, endpoint: Endpoint, schema: Mapping[str, Any]
) -> tuple[str, str | None] | None:
    """Why a node on ``endpoint`` cannot have ``key``, when it is a fal parameter (or LoRAs)
    that its family does not take; None for any other key."""
    if key in endpoint.forbidden:
        return f"'{key}' is not a parameter of {endpoint.id}", endpoint.forbidden[key]
    if key == "loras":
        takers = registry().families_with_loras(endpoint.kind)
        return (
            f"{endpoint.id} does not take LoRAs",
            f"use a family that takes LoRAs ({', '.join(takers)})" if takers else None,
        )
    if f"Param.{key}" not in pipeline_schema()["$defs"]:
        return None
    takes = [
        name
        for name, spec in schema.get("properties", {}).items()
        if str(spec.get("$ref", "")).startswith("#/$defs/Param.")
    ]
    return (
        f"'{key}' is not a parameter of {endpoint.id} ({endpoint.family})",
        f"this endpoint takes: {', '.join(takes)}",
    )


def _is_forbidden(key: str | None, schema: Mapping[str, Any]) -> bool:
    """A parameter of other models that LTX (or this node's family) does not take."""
    endpoint = _endpoint_of(schema)
    if endpoint is not None and key in endpoint.forbidden:
        return True
    return key in registry().forbidden and f"Param.{key}" not in pipeline_schema()["$defs"]


_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "nothing",
}


def _message(kind: str, value: Any, expected: Any) -> str:
    shown = json.dumps(value)[:60]
    if kind == "type":
        types = expected if isinstance(expected, list) else [expected]
        wanted = " or ".join(_TYPE_WORDS.get(str(t), str(t)) for t in types)
        return f"expected {wanted}, got {shown}"
    if kind == "enum":
        return f"{shown} is not one of: {', '.join(json.dumps(v) for v in expected)}"
    if kind == "const":
        return f"expected {json.dumps(expected)}, got {shown}"
    if kind in ("minimum", "exclusiveMinimum"):
        return f"{shown} is below the minimum {expected} of any LTX endpoint"
    if kind in ("maximum", "exclusiveMaximum"):
        return f"{shown} is above the maximum {expected} of any LTX endpoint"
    if kind == "pattern":
        return f"{shown} is not in the expected form"
    if kind in ("minItems", "minProperties"):
        return "must not be empty"
    if kind == "multipleOf":
        return f"{shown} is not a multiple of {expected}"
    return f"{shown} is not valid here ({kind})"


def _hint(kind: str, schema: Mapping[str, Any]) -> str | None:
    """An example of a good value (an enum's message already lists every one)."""
    if kind in ("enum", "const") or not schema.get("examples"):
        return None
    return f"for example: {json.dumps(schema['examples'][0], ensure_ascii=False)}"
