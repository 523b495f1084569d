"""A fast validator for the JSON Schema subset that schemas/pipeline.schema.json uses.

jsonschema checks a 5,000-node pipeline in over a second; compiled once into closures, the
same checks take a small fraction of that, which keeps ``validate`` and ``plan`` interactive
on large episodes. Supported keywords (the build script and a test keep the schema within
them): type, enum, const, pattern, minimum, maximum, exclusiveMinimum, exclusiveMaximum,
multipleOf, minItems, minProperties, items, properties, additionalProperties,
patternProperties, propertyNames, required, allOf, if/then/else and local ``$ref``.
Annotations are ignored. The test suite checks that it reports the same errors as jsonschema.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from runner.ltx.coerce import is_multiple_of

# The keywords checked, in the order they are applied (the rest are handled by the ones
# that own them: additionalProperties by properties, then/else by if).
CHECKED = (
    "$ref", "type", "enum", "const", "pattern", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "multipleOf", "minItems", "minProperties", "required", "properties",
    "propertyNames", "items", "allOf", "if",
)  # fmt: skip
KEYWORDS = frozenset({*CHECKED, "additionalProperties", "patternProperties", "then", "else"})
ANNOTATIONS = frozenset(
    {
        "$schema",
        "$id",
        "$defs",
        "title",
        "description",
        "examples",
        "default",
        "x-families",
        "x-endpoint",
        "x-family",
    }
)


@dataclass(frozen=True, slots=True)
class SchemaError:
    """One failed keyword: where (path), which keyword, what it wanted, what it got."""

    path: tuple[str | int, ...]
    keyword: str
    expected: Any
    instance: Any
    schema: Mapping[str, Any]
    in_property_name: bool = False


Errors = list[SchemaError]
Check = Callable[[Any, tuple[str | int, ...], Errors], None]


def _is_type(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "null":
        return value is None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return kind == "number" or isinstance(value, int) or value.is_integer()


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return (
        bool(type(a) is type(b) or (isinstance(a, int | float) and isinstance(b, int | float)))
        and a == b
    )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class SchemaCompiler:
    """Compiles schemas of one document (for its ``#/$defs/...`` references)."""

    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self._refs: dict[str, Check] = {}

    def compile(self, schema: Mapping[str, Any], names: bool = False) -> Check:
        unknown = set(schema) - KEYWORDS - ANNOTATIONS
        if unknown:
            raise ValueError(f"unsupported schema keywords: {sorted(unknown)}")
        checks: list[Check] = []
        for keyword in CHECKED:
            present = keyword in schema or (
                keyword == "properties"
                and ("additionalProperties" in schema or "patternProperties" in schema)
            )
            if present:
                checks.append(getattr(self, "_" + keyword.strip("$"))(schema, names))
        if not checks:
            return _accept
        if len(checks) == 1:
            return checks[0]

        def run_all(value: Any, path: tuple[str | int, ...], errors: Errors) -> None:
            for check in checks:
                check(value, path, errors)

        return run_all

    def _fail(
        self,
        schema: Mapping[str, Any],
        keyword: str,
        names: bool,
        test: Callable[[Any], bool],
        applies: Callable[[Any], bool] | None = None,
    ) -> Check:
        expected = schema[keyword]

        def check(value: Any, path: tuple[str | int, ...], errors: Errors) -> None:
            if (applies is None or applies(value)) and not test(value):
                errors.append(SchemaError(path, keyword, expected, value, schema, names))

        return check

    def _ref(self, schema: Mapping[str, Any], names: bool) -> Check:
        ref = schema["$ref"]
        if not ref.startswith("#/$defs/"):
            raise ValueError(f"only local #/$defs references are supported: {ref}")
        name = ref[len("#/$defs/") :]
        key = f"{name}:{names}"

        def check(value: Any, path: tuple[str | int, ...], errors: Errors) -> None:
            compiled = self._refs.get(key)
            if compiled is None:
                compiled = self._refs[key] = self.compile(self.root["$defs"][name], names)
            compiled(value, path, errors)

        return check

    def _type(self, schema: Mapping[str, Any], names: bool) -> Check:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        return self._fail(schema, "type", names, lambda v: any(_is_type(v, k) for k in kinds))

    def _enum(self, schema: Mapping[str, Any], names: bool) -> Check:
        options = schema["enum"]
        return self._fail(schema, "enum", names, lambda v: any(_json_equal(v, o) for o in options))

    def _const(self, schema: Mapping[str, Any], names: bool) -> Check:
        wanted = schema["const"]
        return self._fail(schema, "const", names, lambda v: _json_equal(v, wanted))

    def _pattern(self, schema: Mapping[str, Any], names: bool) -> Check:
        regex = re.compile(schema["pattern"])
        return self._fail(
            schema, "pattern", names, lambda v: bool(regex.search(v)), lambda v: isinstance(v, str)
        )

    def _bound(
        self,
        schema: Mapping[str, Any],
        names: bool,
        keyword: str,
        test: Callable[[float, float], bool],
    ) -> Check:
        limit = schema[keyword]
        return self._fail(schema, keyword, names, lambda v: test(v, limit), _number)

    def _minimum(self, schema: Mapping[str, Any], names: bool) -> Check:
        return self._bound(schema, names, "minimum", lambda v, lim: v >= lim)

    def _maximum(self, schema: Mapping[str, Any], names: bool) -> Check:
        return self._bound(schema, names, "maximum", lambda v, lim: v <= lim)

    def _exclusiveMinimum(self, schema: Mapping[str, Any], names: bool) -> Check:
        return self._bound(schema, names, "exclusiveMinimum", lambda v, lim: v > lim)

    def _exclusiveMaximum(self, schema: Mapping[str, Any], names: bool) -> Check:
        return self._bound(schema, names, "exclusiveMaximum", lambda v, lim: v < lim)

    def _multipleOf(self, schema: Mapping[str, Any], names: bool) -> Check:
        return self._bound(schema, names, "multipleOf", is_multiple_of)

    def _minItems(self, schema: Mapping[str, Any], names: bool) -> Check:
        least = schema["minItems"]
        return self._fail(
            schema, "minItems", names, lambda v: len(v) >= least, lambda v: isinstance(v, list)
        )

    def _minProperties(self, schema: Mapping[str, Any], names: bool) -> Check:
        least = schema["minProperties"]
        return self._fail(
            schema, "minProperties", names, lambda v: len(v) >= least, lambda v: isinstance(v, dict)
        )

    def _required(self, schema: Mapping[str, Any], names: bool) -> Check:
        keys = schema["required"]
        return self._fail(
            schema,
            "required",
            names,
            lambda v: all(k in v for k in keys),
            lambda v: isinstance(v, dict),
        )

    def _properties(self, schema: Mapping[str, Any], names: bool) -> Check:
        props = {k: self.compile(s, names) for k, s in schema.get("properties", {}).items()}
        patterns = [
            (re.compile(p), self.compile(s, names))
            for p, s in schema.get("patternProperties", {}).items()
        ]
        extra = schema.get("additionalProperties", True)
        extra_check = self.compile(extra, names) if isinstance(extra, Mapping) else None

        def check(value: Any, path: tuple[str | int, ...], errors: Errors) -> None:
            if not isinstance(value, dict):
                return
            unknown = False
            for key, item in value.items():
                found = props.get(key)
                matched = [c for regex, c in patterns if regex.search(key)] if patterns else []
                if found is not None:
                    found(item, (*path, key), errors)
                for pattern_check in matched:
                    pattern_check(item, (*path, key), errors)
                if found is not None or matched:
                    continue
                if extra_check is not None:
                    extra_check(item, (*path, key), errors)
                elif extra is False:
                    unknown = True
            if unknown:
                errors.append(
                    SchemaError(path, "additionalProperties", False, value, schema, names)
                )

        return check

    def _propertyNames(self, schema: Mapping[str, Any], names: bool) -> Check:
        name_check = self.compile(schema["propertyNames"], True)

        def check(value: Any, path: tuple[str | int, ...], errors: Errors) -> None:
            if isinstance(value, dict):
                for key in value:
                    name_check(key, path, errors)

        return check

    def _items(self, schema: Mapping[str, Any], names: bool) -> Check:
        item_check = self.compile(schema["items"], names)

        def check(value: Any, path: tuple[str | int, ...], errors: Errors) -> None:
            if isinstance(value, list):
                for i, item in enumerate(value):
                    item_check(item, (*path, i), errors)

        return check

    def _allOf(self, schema: Mapping[str, Any], names: bool) -> Check:
        parts = [self.compile(s, names) for s in schema["allOf"]]

        def check(value: Any, path: tuple[str | int, ...], errors: Errors) -> None:
            for part in parts:
                part(value, path, errors)

        return check

    def _if(self, schema: Mapping[str, Any], names: bool) -> Check:
        condition = self.compile(schema["if"], names)
        then = self.compile(schema["then"], names) if "then" in schema else None
        otherwise = self.compile(schema["else"], names) if "else" in schema else None

        def check(value: Any, path: tuple[str | int, ...], errors: Errors) -> None:
            probe: Errors = []
            condition(value, path, probe)
            branch = otherwise if probe else then
            if branch is not None:
                branch(value, path, errors)

        return check


def _accept(value: Any, path: tuple[str | int, ...], errors: Errors) -> None:
    """The empty schema: anything goes."""


def compile_schema(root: Mapping[str, Any], definition: str | None = None) -> Check:
    """A checker for ``root`` (or for its ``$defs`` entry ``definition``)."""
    compiler = SchemaCompiler(root)
    return compiler.compile(root if definition is None else root["$defs"][definition])
