"""fal endpoint input schemas, compiled into fast checkers that answer the way fal does.

fal's endpoints are FastAPI apps with pydantic v2 models: a bad request gets a 422 whose
``detail`` lists errors like ``{"type": "less_than_equal", "loc": ["body", "num_frames"],
"msg": "Input should be less than or equal to 161", "input": 500, "ctx": {"le": 161}}``.
The derived JSON Schemas under ``schemas/endpoints/`` use a small subset of JSON Schema
(types, enums, bounds, multipleOf, required, nested objects and arrays of objects); this
module compiles that subset into a checker producing the same error list, in field order.

Pydantic's lax mode is mirrored: ``"121"`` is accepted for an integer, ``1`` for a boolean,
and unknown keys are ignored. shotgraph's own pipeline checks are stricter than this; the
emulator answers exactly like this.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

from runner.resources import schemas_dir

JSON = Any
FieldError = dict[str, Any]

_MEMO_TYPES = (int, float, bool)
_MEMO_LIMIT = 4096
_TRUE = {"true", "t", "yes", "y", "on", "1"}
_FALSE = {"false", "f", "no", "n", "off", "0"}


def is_multiple_of(value: float, step: float) -> bool:
    """JSON Schema's multipleOf, exact in decimal (the pipeline's validator uses it too):
    0.15 is a multiple of 0.05 though 0.15 / 0.05 is 2.9999999999999996."""
    try:
        return Decimal(str(value)) % Decimal(str(step)) == 0
    except InvalidOperation:
        return False


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
    model: ObjectSchema | None = None  # an object value
    items: ObjectSchema | None = None  # an array of objects
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

    @property
    def _index(self) -> dict[str, Field]:
        index: dict[str, Field] | None = self.__dict__.get("_field_index")
        if index is None:
            index = {f.name: f for f in self.fields}
            object.__setattr__(self, "_field_index", index)
        return index

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
                if f.model is not None and isinstance(item, Mapping):
                    item = f.model.with_defaults(item)
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
    coerced, err = _coerce(f, value, loc)
    if err is not None:
        out.append(err)
        return
    if f.enum and coerced not in f.enum:
        expected = _expected(f.enum)
        out.append(
            _error("enum", loc, f"Input should be {expected}", value, {"expected": expected})
        )
        return
    problems = _bounds(f, coerced, value, loc)
    if problems:
        out.extend(problems)
    elif memo_key is not None and len(f.valid) < _MEMO_LIMIT:
        f.valid.add(memo_key)


def _coerce(f: Field, value: JSON, loc: tuple[str | int, ...]) -> tuple[JSON, FieldError | None]:
    kind = f.type
    if kind == "string":
        if isinstance(value, str):
            return value, None
        return None, _error("string_type", loc, "Input should be a valid string", value)
    if kind == "boolean":
        if isinstance(value, bool):
            return value, None
        if isinstance(value, int) and value in (0, 1):
            return bool(value), None
        if isinstance(value, str):
            if value.lower() in _TRUE:
                return True, None
            if value.lower() in _FALSE:
                return False, None
            msg = "Input should be a valid boolean, unable to interpret input"
            return None, _error("bool_parsing", loc, msg, value)
        return None, _error("bool_type", loc, "Input should be a valid boolean", value)
    if kind == "integer":
        return _coerce_int(value, loc)
    if kind == "number":
        return _coerce_number(value, loc)
    return value, None


def _coerce_int(value: JSON, loc: tuple[str | int, ...]) -> tuple[JSON, FieldError | None]:
    if isinstance(value, bool):
        return int(value), None
    if isinstance(value, int):
        return value, None
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return int(value), None
        msg = "Input should be a valid integer, got a number with a fractional part"
        return None, _error("int_from_float", loc, msg, value)
    if isinstance(value, str):
        try:
            return int(value.strip()), None
        except ValueError:
            msg = "Input should be a valid integer, unable to parse string as an integer"
            return None, _error("int_parsing", loc, msg, value)
    return None, _error("int_type", loc, "Input should be a valid integer", value)


def _coerce_number(value: JSON, loc: tuple[str | int, ...]) -> tuple[JSON, FieldError | None]:
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            return None, _error("finite_number", loc, "Input should be a finite number", value)
        return value, None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            msg = "Input should be a valid number, unable to parse string as a number"
            return None, _error("float_parsing", loc, msg, value)
        return _coerce_number(number, loc)
    return None, _error("float_type", loc, "Input should be a valid number", value)


def _bounds(f: Field, n: JSON, raw: JSON, loc: tuple[str | int, ...]) -> list[FieldError]:
    if isinstance(n, bool) or not isinstance(n, int | float):
        return []
    checks = (
        (f.gt, n > f.gt if f.gt is not None else True, "greater_than", "greater than", "gt"),
        (
            f.ge,
            n >= f.ge if f.ge is not None else True,
            "greater_than_equal",
            "greater than or equal to",
            "ge",
        ),
        (f.lt, n < f.lt if f.lt is not None else True, "less_than", "less than", "lt"),
        (
            f.le,
            n <= f.le if f.le is not None else True,
            "less_than_equal",
            "less than or equal to",
            "le",
        ),
    )
    for limit, ok, kind, words, key in checks:
        if limit is not None and not ok:
            shown = _num(limit)
            return [_error(kind, loc, f"Input should be {words} {shown}", raw, {key: shown})]
    if f.multiple_of is not None and not is_multiple_of(n, f.multiple_of):
        shown = _num(f.multiple_of)
        msg = f"Input should be a multiple of {shown}"
        return [_error("multiple_of", loc, msg, raw, {"multiple_of": shown})]
    return []


def _num(x: float) -> int | float:
    return int(x) if float(x).is_integer() else x


def _expected(options: tuple[JSON, ...]) -> str:
    shown = [repr(o) if isinstance(o, str) else str(o) for o in options]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + f" or {shown[-1]}"


def compile_object(schema: Mapping[str, JSON], defs: Mapping[str, JSON]) -> ObjectSchema:
    """Compile an object schema (with ``$defs`` for its references)."""
    props: Mapping[str, JSON] = schema.get("properties", {})
    order = list(schema.get("x-fal-order-properties", [])) or list(props)
    order += [name for name in props if name not in order]
    fields = tuple(_compile_field(name, props[name], defs) for name in order if name in props)
    return ObjectSchema(
        title=str(schema.get("title", "object")),
        fields=fields,
        required=frozenset(schema.get("required", [])),
    )


def _deref(schema: Mapping[str, JSON], defs: Mapping[str, JSON]) -> Mapping[str, JSON] | None:
    ref = schema.get("$ref")
    if ref is None and isinstance(schema.get("allOf"), list) and len(schema["allOf"]) == 1:
        ref = schema["allOf"][0].get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target: Mapping[str, JSON] = defs[ref.rsplit("/", 1)[1]]
        return target
    return None


def _compile_field(name: str, spec: Mapping[str, JSON], defs: Mapping[str, JSON]) -> Field:
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
        model=compile_object(model, defs) if model is not None else None,
        items=items,
    )


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
