"""pydantic v2's lax-mode rules for one JSON scalar, as fal's apps (FastAPI + pydantic)
apply them: what is accepted and what each refusal is called.

Measured against pydantic 2.14 (tests/ltx/test_pydantic_parity.py checks 1,000 random bodies
against models generated from the same schemas):

- ``integer``: a bool is 0/1; a float must be finite (``finite_number``), whole
  (``int_from_float``) and within 64 bits (``int_parsing_size``); a string is stripped and
  read as Python reads an int (sign, leading zeros, ``_`` between digits), ``"12.0"`` too,
  else ``int_parsing``; else ``int_type``.
- ``number``: bools and ints are numbers (an int too large for a float is ``float_type``);
  NaN and infinities are accepted (and then fail any bound); a string is stripped and read
  as a float, else ``float_parsing``; else ``float_type``.
- ``boolean``: ``0``/``1`` (and ``0.0``/``1.0``); any other whole number within 64 bits is
  ``bool_parsing``, a fraction or a larger number ``bool_type``; the strings true/false,
  t/f, yes/no, y/n, on/off, 1/0 in any case (unstripped), else ``bool_parsing``; else
  ``bool_type``.
- ``string``: a str, else ``string_type``; then ``string_too_short``/``string_too_long``.
- an enum (generated as an ``Enum`` class) ignores the declared type: the value must equal
  a member (``6.0`` is ``6``; ``"6"`` is not), else ``enum``.
- bounds in pydantic-core's order: ``multiple_of``, then ``le``, ``lt``, ``ge``, ``gt``.
"""

from __future__ import annotations

import math
import operator
import re
from decimal import Decimal, InvalidOperation
from typing import Any

_TRUE = {"true", "t", "yes", "y", "on", "1"}
_FALSE = {"false", "f", "no", "n", "off", "0"}
_WHOLE_DECIMAL = re.compile(r"^([+-]?\d+)\.0+$")
_INT64 = 2**63

Refusal = tuple[str, str]  # (type, msg)


def is_multiple_of(value: float, step: float) -> bool:
    """JSON Schema's multipleOf, exact in decimal (the pipeline's validator uses it too):
    0.15 is a multiple of 0.05 though 0.15 / 0.05 is 2.9999999999999996."""
    try:
        return Decimal(str(value)) % Decimal(str(step)) == 0
    except InvalidOperation:
        return False


def coerce(kind: str | None, value: Any) -> tuple[Any, Refusal | None]:
    """``value`` as the declared JSON type ``kind`` takes it, or why not."""
    if kind == "string":
        if isinstance(value, str):
            return value, None
        return None, ("string_type", "Input should be a valid string")
    if kind == "boolean":
        return _boolean(value)
    if kind == "integer":
        return _integer(value)
    if kind == "number":
        return _number(value)
    return value, None


def enum_refusal(kind: str | None, value: Any, options: tuple[Any, ...]) -> Refusal | None:
    """Why ``value`` is not one of an enum's members, if it is not. An integer enum is an
    ``IntEnum``: the value is read as an integer first (``"6"`` is ``6``); any other enum
    compares values as they are (``6.0`` is ``6``; a bool is never a number)."""
    if kind == "integer" and not isinstance(value, bool):
        if isinstance(value, int) and not _i64(value):
            msg = "Unable to parse input string as an integer, exceeded maximum size"
            return "int_parsing_size", msg
        coerced, refused = _integer(value)
        if refused is None and coerced in options:
            return None
    elif any(
        value == option and isinstance(value, bool) == isinstance(option, bool)
        for option in options
    ):
        return None
    return "enum", f"Input should be {expected(options)}"


def expected(options: tuple[Any, ...]) -> str:
    """pydantic's list of the accepted values: ``'a', 'b' or 'c'``."""
    shown = [repr(o) if isinstance(o, str) else str(o) for o in options]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + f" or {shown[-1]}"


def bound(
    number: float,
    kind: str | None,
    *,
    multiple_of: float | None,
    le: float | None,
    lt: float | None,
    ge: float | None,
    gt: float | None,
) -> tuple[str, str, dict[str, Any]] | None:
    """The first bound ``number`` breaks: (type, msg, ctx); NaN breaks every one but
    ``multiple_of``, which lets NaN and infinities through (pydantic-core's float check
    compares a NaN remainder)."""
    if multiple_of is not None and not _multiple(number, multiple_of, kind):
        shown = _limit(multiple_of, kind)
        return "multiple_of", f"Input should be a multiple of {shown}", {"multiple_of": shown}
    checks = (
        (le, "le", "less_than_equal", "less than or equal to", operator.le),
        (lt, "lt", "less_than", "less than", operator.lt),
        (ge, "ge", "greater_than_equal", "greater than or equal to", operator.ge),
        (gt, "gt", "greater_than", "greater than", operator.gt),
    )
    for limit, key, kind_name, words, ok in checks:
        if limit is not None and not ok(number, limit):
            shown = _limit(limit, kind)
            return kind_name, f"Input should be {words} {shown}", {key: shown}
    return None


def length_refusal(
    text: str, min_length: int | None, max_length: int | None
) -> tuple[str, str, dict[str, Any]] | None:
    """A string's ``minLength``/``maxLength`` (in characters), as pydantic words them."""
    if min_length is not None and len(text) < min_length:
        unit = "character" if min_length == 1 else "characters"
        msg = f"String should have at least {min_length} {unit}"
        return "string_too_short", msg, {"min_length": min_length}
    if max_length is not None and len(text) > max_length:
        unit = "character" if max_length == 1 else "characters"
        msg = f"String should have at most {max_length} {unit}"
        return "string_too_long", msg, {"max_length": max_length}
    return None


def _multiple(number: float, step: float, kind: str | None) -> bool:
    if kind != "number" or isinstance(number, int):
        return is_multiple_of(number, step)
    if not math.isfinite(number):
        return True
    # pydantic-core's float rule: a remainder within a billionth of the value is none.
    rest = number % step
    threshold = abs(number) / 1e9
    return not (abs(rest) > threshold and abs(rest - step) > threshold)


def _limit(limit: float, kind: str | None) -> int | float:
    # An integer field's bounds are ints, a number field's floats (as pydantic shows them).
    if kind == "number":
        return float(limit)
    return int(limit) if float(limit).is_integer() else limit


def _i64(value: float) -> bool:
    return -_INT64 <= value < _INT64


def _boolean(value: Any) -> tuple[Any, Refusal | None]:
    if isinstance(value, bool):
        return value, None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and _i64(value):
        value = int(value)
    if isinstance(value, int) and _i64(value):
        if value in (0, 1):
            return bool(value), None
        return None, ("bool_parsing", "Input should be a valid boolean, unable to interpret input")
    if isinstance(value, str):
        if value.lower() in _TRUE:
            return True, None
        if value.lower() in _FALSE:
            return False, None
        return None, ("bool_parsing", "Input should be a valid boolean, unable to interpret input")
    return None, ("bool_type", "Input should be a valid boolean")


def _integer(value: Any) -> tuple[Any, Refusal | None]:
    if isinstance(value, bool):
        return int(value), None
    if isinstance(value, int):
        return value, None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None, ("finite_number", "Input should be a finite number")
        if value.is_integer():
            if not _i64(value):
                msg = "Unable to parse input string as an integer, exceeded maximum size"
                return None, ("int_parsing_size", msg)
            return int(value), None
        msg = "Input should be a valid integer, got a number with a fractional part"
        return None, ("int_from_float", msg)
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text), None
        except ValueError:
            pass
        whole = _WHOLE_DECIMAL.match(text)
        if whole:
            return int(whole[1]), None
        msg = "Input should be a valid integer, unable to parse string as an integer"
        return None, ("int_parsing", msg)
    return None, ("int_type", "Input should be a valid integer")


def _number(value: Any) -> tuple[Any, Refusal | None]:
    if isinstance(value, int | float):
        try:
            return float(value), None
        except OverflowError:  # an int too large for a float
            return None, ("float_type", "Input should be a valid number")
    if isinstance(value, str):
        try:
            return float(value.strip()), None
        except ValueError:
            msg = "Input should be a valid number, unable to parse string as a number"
            return None, ("float_parsing", msg)
    return None, ("float_type", "Input should be a valid number")
