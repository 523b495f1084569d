"""fal endpoint input schemas, compiled into fast checkers that answer the way fal does.

fal's endpoints are FastAPI apps with pydantic v2 models: a bad request gets a 422 whose
``detail`` lists errors like ``{"type": "less_than_equal", "loc": ["body", "num_frames"],
"msg": "Input should be less than or equal to 161", "input": 500, "ctx": {"le": 161}}``.
The derived JSON Schemas under ``schemas/endpoints/`` use a small subset of JSON Schema
(types, enums, bounds, multipleOf, required, nested objects and arrays of objects); this
module compiles that subset into a checker producing the same error list, in field order.

Pydantic's lax mode is mirrored (:mod:`runner.ltx.coerce` has its scalar rules): ``"121"`` is
accepted for an integer, ``1`` for a boolean, and unknown keys are ignored. ``anyOf`` with
``null``, or a field neither required nor defaulted, is nullable (``seed: null`` is fine
there, and only there); any other ``anyOf`` is a union whose errors carry the branch in
their ``loc``, as pydantic's do (``["body", "video_size", "ImageSize", "width"]``,
``["body", "video_size", "enum[VideoSize]"]``). The models pydantic is compared with are
those datamodel-code-generator makes from the same schemas (enums as ``Enum`` classes,
nullable only where the schema says so). shotgraph's own pipeline checks are stricter than
this; the emulator answers exactly like this.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from runner.ltx.coerce import bound, coerce, enum_refusal, expected, length_refusal
from runner.resources import schemas_dir

JSON = Any
FieldError = dict[str, Any]

_MEMO_TYPES = (int, float, bool)
_MEMO_LIMIT = 4096


@dataclass(frozen=True)
class Field:
    """One property of an object schema."""

    name: str
    type: str | None
    description: str = ""
    default: JSON = None
    has_default: bool = False
    enum: tuple[JSON, ...] = ()
    ge: float | None = None
    le: float | None = None
    gt: float | None = None
    lt: float | None = None
    multiple_of: float | None = None
    min_length: int | None = None  # of a string
    max_length: int | None = None
    model: ObjectSchema | None = None  # an object value
    items: ObjectSchema | None = None  # an array of objects
    nullable: bool = False  # null is accepted (``anyOf`` with ``{"type": "null"}``)
    branches: tuple[Field, ...] = ()  # a union's alternatives, each named as pydantic tags it
    # Scalar values already found valid (a plan checks the same parameters thousands of times).
    valid: set[tuple[Any, Any]] = field(default_factory=set, compare=False, repr=False)


@dataclass(frozen=True)
class ObjectSchema:
    """An object with named fields in fal's declared order."""

    title: str
    fields: tuple[Field, ...]
    required: frozenset[str] = field(default_factory=frozenset)

    def field(self, name: str) -> Field | None:
        return self._index.get(name)

    @cached_property
    def _index(self) -> dict[str, Field]:
        return {f.name: f for f in self.fields}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def check(self, value: JSON, loc: tuple[str | int, ...] = ("body",)) -> list[FieldError]:
        """Every error in ``value``, as fal's 422 ``detail`` would list them."""
        errors: list[FieldError] = []
        self._check_object(value, loc, errors)
        return errors

    def _check_object(self, value: JSON, loc: tuple[str | int, ...], out: list[FieldError]) -> None:
        if not isinstance(value, Mapping):
            out.append(
                _error(
                    "model_type",
                    loc,
                    f"Input should be a valid dictionary or instance of {self.title}",
                    value,
                    {"class_name": self.title},
                )
            )
            return
        for f in self.fields:
            if f.name not in value:
                if f.name in self.required:
                    out.append(_error("missing", (*loc, f.name), "Field required", dict(value)))
                continue
            _check_field(f, value[f.name], (*loc, f.name), out)

    def with_defaults(self, value: Mapping[str, JSON]) -> dict[str, JSON]:
        """``value`` with every defaulted field present, nested objects included, in fal's
        field order (unknown keys kept at the end)."""
        out: dict[str, JSON] = {}
        for f in self.fields:
            if f.name in value:
                item = value[f.name]
                # A union's object branch (LTX-2's ``video_size``) fills its defaults too.
                model = f.model or next((b.model for b in f.branches if b.model), None)
                if model is not None and isinstance(item, Mapping):
                    item = model.with_defaults(item)
                elif f.items is not None and isinstance(item, list):
                    item = [f.items.with_defaults(x) if isinstance(x, Mapping) else x for x in item]
                out[f.name] = item
            elif f.has_default:
                default = f.default
                # Defaults are shared: hand out copies of the mutable ones ([] for lists).
                out[f.name] = (
                    copy.deepcopy(default) if isinstance(default, list | dict) else default
                )
        for key, item in value.items():
            out.setdefault(key, item)
        return out


def _error(
    kind: str, loc: tuple[str | int, ...], msg: str, value: JSON, ctx: dict[str, JSON] | None = None
) -> FieldError:
    err: FieldError = {"type": kind, "loc": list(loc), "msg": msg, "input": value}
    if ctx is not None:
        err["ctx"] = ctx
    return err


def _check_field(f: Field, value: JSON, loc: tuple[str | int, ...], out: list[FieldError]) -> None:
    if value is None and f.nullable:
        return
    if f.branches:
        # A union: fine if any branch takes the value, else every branch's errors, each
        # under the branch's name.
        errors: list[FieldError] = []
        for branch in f.branches:
            found: list[FieldError] = []
            _check_field(branch, value, (*loc, branch.name), found)
            if not found:
                return
            errors.extend(found)
        out.extend(errors)
        return
    if f.model is not None:
        f.model._check_object(value, loc, out)
        return
    if f.type == "array":
        if not isinstance(value, list | tuple):
            out.append(_error("list_type", loc, "Input should be a valid list", value))
            return
        if f.items is not None:
            for i, item in enumerate(value):
                f.items._check_object(item, (*loc, i), out)
        return
    memo_key = (type(value), value) if isinstance(value, _MEMO_TYPES) else None
    if memo_key is not None and memo_key in f.valid:
        return  # this exact value passed before: checks are pure
    if f.enum:
        refusal = enum_refusal(f.type, value, f.enum)
        if refusal is not None:
            ctx = {"expected": expected(f.enum)} if refusal[0] == "enum" else None
            out.append(_error(refusal[0], loc, refusal[1], value, ctx))
            return
    else:
        coerced, refusal = coerce(f.type, value)
        if refusal is not None:
            out.append(_error(refusal[0], loc, refusal[1], value))
            return
        if f.type == "string" and (f.min_length is not None or f.max_length is not None):
            short = length_refusal(coerced, f.min_length, f.max_length)
            if short is not None:
                out.append(_error(short[0], loc, short[1], value, short[2]))
                return
        if f.type in ("integer", "number") and not isinstance(coerced, bool):
            broken = bound(
                coerced, f.type, multiple_of=f.multiple_of, le=f.le, lt=f.lt, ge=f.ge, gt=f.gt
            )
            if broken is not None:
                out.append(_error(broken[0], loc, broken[1], value, broken[2]))
                return
    if memo_key is not None and len(f.valid) < _MEMO_LIMIT:
        f.valid.add(memo_key)


def compile_object(schema: Mapping[str, JSON], defs: Mapping[str, JSON]) -> ObjectSchema:
    """Compile an object schema (with ``$defs`` for its references)."""
    props: Mapping[str, JSON] = schema.get("properties", {})
    order = list(schema.get("x-fal-order-properties", [])) or list(props)
    order += [name for name in props if name not in order]
    required = frozenset(schema.get("required", []))
    fields = tuple(
        _optional(_compile_field(name, props[name], defs), required)
        for name in order
        if name in props
    )
    return ObjectSchema(title=str(schema.get("title", "object")), fields=fields, required=required)


def _optional(f: Field, required: frozenset[str]) -> Field:
    # A field neither required nor defaulted defaults to None, so null is fine there (fal's
    # ``seed: Optional[int] = None``, which its OpenAPI shows as a bare integer).
    if f.name in required or f.has_default or f.nullable:
        return f
    return replace(f, nullable=True)


def _deref(schema: Mapping[str, JSON], defs: Mapping[str, JSON]) -> Mapping[str, JSON] | None:
    ref = schema.get("$ref")
    if ref is None and isinstance(schema.get("allOf"), list) and len(schema["allOf"]) == 1:
        ref = schema["allOf"][0].get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target: Mapping[str, JSON] = defs[ref.rsplit("/", 1)[1]]
        return target
    return None


def _compile_field(name: str, spec: Mapping[str, JSON], defs: Mapping[str, JSON]) -> Field:
    options = spec.get("anyOf")
    if isinstance(options, list):
        nullable = any(o.get("type") == "null" for o in options)
        real = [o for o in options if o.get("type") != "null"]
        rest = {key: value for key, value in spec.items() if key != "anyOf"}
        if len(real) == 1:  # X | None: X, and null
            return replace(_compile_field(name, {**rest, **real[0]}, defs), nullable=nullable)
        return replace(
            _compile_field(name, rest, defs),
            nullable=nullable,
            branches=tuple(_compile_field(_tag(name, o, defs), o, defs) for o in real),
        )
    model = _deref(spec, defs)
    items_spec = spec.get("items")
    items = None
    if isinstance(items_spec, Mapping):
        target = _deref(items_spec, defs)
        if target is not None:
            items = compile_object(target, defs)
    return Field(
        name=name,
        type=spec.get("type") or ("object" if model is not None else None),
        description=str(spec.get("description", "")),
        default=spec.get("default"),
        has_default="default" in spec,
        enum=tuple(spec.get("enum", ())),
        ge=spec.get("minimum"),
        le=spec.get("maximum"),
        gt=spec.get("exclusiveMinimum"),
        lt=spec.get("exclusiveMaximum"),
        multiple_of=spec.get("multipleOf"),
        min_length=spec.get("minLength"),
        max_length=spec.get("maxLength"),
        model=compile_object(model, defs) if model is not None else None,
        items=items,
    )


_PYTHON_TYPES = {"string": "str", "integer": "int", "number": "float", "boolean": "bool"}


def _tag(name: str, spec: Mapping[str, JSON], defs: Mapping[str, JSON]) -> str:
    """The name pydantic gives a union branch in an error's ``loc``: the model's class, the
    generated ``Enum`` class of an inline enum (named after the field), or the type."""
    ref = spec.get("$ref")
    if isinstance(ref, str):
        target = _deref(spec, defs)
        return str((target or {}).get("title") or ref.rsplit("/", 1)[1])
    if "enum" in spec:
        return "enum[" + "".join(part.capitalize() for part in name.split("_")) + "]"
    return _PYTHON_TYPES.get(str(spec.get("type")), str(spec.get("type")))


def endpoint_schema_path(endpoint_id: str, role: str = "input") -> Path:
    return schemas_dir() / "endpoints" / f"{endpoint_id}.{role}.json"


@cache
def load_raw(endpoint_id: str, role: str = "input") -> Mapping[str, JSON]:
    """The derived JSON Schema of an endpoint's request (``input``) or result (``output``)."""
    data: Mapping[str, JSON] = json.loads(endpoint_schema_path(endpoint_id, role).read_text())
    return data


@cache
def schema_digest(endpoint_id: str) -> str:
    """The sha256 of an endpoint's request schema as canonical JSON: what a request was
    checked against. The lockfile records it, so a replay can tell that fal's schema (the
    committed copy, refreshed from fal's OpenAPI) changed since."""
    text = json.dumps(load_raw(endpoint_id, "input"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@cache
def input_schema(endpoint_id: str) -> ObjectSchema:
    """The compiled request schema of ``endpoint_id``."""
    raw = load_raw(endpoint_id, "input")
    return compile_object(raw, raw.get("$defs", {}))
