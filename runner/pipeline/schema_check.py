"""Checking a document against schemas/pipeline.schema.json, in words a user can act on.

The compiled validator (runner/pipeline/schema_validator.py) finds the errors; this module
turns each into a diagnostic with the file, line, key path and a hint (an unknown key gets a
did-you-mean; a parameter other fal models take but LTX does not gets what LTX uses instead).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

from runner.errors import Diagnostics, KeyPath
from runner.ltx.registry import registry
from runner.pipeline.schema_validator import Check, SchemaError, compile_schema
from runner.pipeline.yamlsrc import SourceMap
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
) -> set[KeyPath]:
    """Check ``document`` (the whole pipeline, or one ``$defs`` entry) and report errors.

    Returns the key paths that had errors, so later stages can skip what is broken.
    """
    broken: set[KeyPath] = set()
    errors: list[SchemaError] = []
    _validator(definition)(document, (), errors)
    for error in errors:
        path = (*base, *error.path)
        broken.add(path)
        for key, message, hint, at_key in _explain(error):
            where = (*path, key) if key is not None else path
            forbidden = key in registry().forbidden
            code = "forbidden-param" if forbidden else f"schema-{error.keyword}"
            diags.error(code, message, source.locate(where, key=at_key), hint)
    return broken


def _explain(error: SchemaError) -> Iterator[tuple[str | None, str, str | None, bool]]:
    """(key, message, hint, point at the key rather than the value) for one error."""
    kind = error.keyword
    value = error.instance
    schema = error.schema
    if kind == "additionalProperties" and isinstance(value, dict):
        known = sorted(schema.get("properties", {}))
        for key in sorted(set(value) - set(known)):
            yield (key, *_unknown_key(key, known), True)
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


def _unknown_key(key: str, known: list[str]) -> tuple[str, str | None]:
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
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
    if close:
        return f"unknown key '{key}'", f"did you mean {' or '.join(repr(c) for c in close)}?"
    shown = ", ".join(known[:12]) + (" ..." if len(known) > 12 else "")
    return f"unknown key '{key}'", f"allowed here: {shown}"


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
