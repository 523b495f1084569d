"""What a template may spend, and what a value weighs: the bookkeeping of the sandbox
(runner/pipeline/sandbox.py).

A value's *weight* is about the length of its text (what it costs to show or to join); it is
worked out from the operands *before* an expensive value is made (``'a' * 10**10`` is
refused without allocating anything). Every bound raises :class:`BudgetExceeded` with a hint.
"""

from __future__ import annotations

import math
import re
import string
import time
from collections.abc import Callable, ItemsView, Iterable, KeysView, ValuesView
from typing import Any

from jinja2 import Undefined
from jinja2.exceptions import TemplateError

MAX_STEPS = 10_000
MAX_TEXT = 100_000
MAX_MADE = 1_000_000
MAX_SECONDS = 1.0  # of this thread's CPU time: a loaded machine must not fail a template
_CLOCK_EVERY = 32  # steps between readings of the CPU clock (a reading costs ~0.5 µs)
MAX_INT_DIGITS = 1_000
MAX_SIZE_ARGUMENT = 100_000  # a width, a count, a number of lines given to a filter
_BITS_PER_DIGIT = 3.33
_DATA = (str, int, float, bool, type(None), range, Undefined)
_SEQUENCES = (list, tuple, KeysView, ValuesView, ItemsView)
# Linear patterns only: a template controls the text they scan.
_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")
_DIGITS = re.compile(r"\d+")


class BudgetExceeded(TemplateError):
    """A template spent more than its budget; the message says which bound, with a hint."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


class Budget:
    """What one render may still spend."""

    def __init__(self, seconds: float = MAX_SECONDS) -> None:
        self.steps = MAX_STEPS
        self.made = MAX_MADE
        # CPU time, not wall time: the same template passes or fails on a quiet machine
        # and on one where it waits for a core (a render must not depend on the load).
        self.deadline = time.thread_time() + seconds

    def step(self) -> None:
        self.steps -= 1
        if self.steps < 0:
            raise BudgetExceeded(
                f"the template takes more than {MAX_STEPS:,} steps (loop iterations and calls)",
                "a prompt template formats a few values; move loops over big data out of it",
            )
        if self.steps % _CLOCK_EVERY == 0 and time.thread_time() > self.deadline:
            raise BudgetExceeded(
                f"the template takes more than {MAX_SECONDS:g} s of CPU time to render",
                "a prompt template formats a few values; simplify it",
            )

    def make(self, weight: int) -> None:
        """Pay for a value of ``weight`` before making it."""
        if weight > MAX_TEXT:
            raise BudgetExceeded(
                f"the template makes a value of more than {MAX_TEXT:,} characters",
                "a prompt is at most a few thousand characters",
            )
        self.made -= weight
        if self.made < 0:
            raise BudgetExceeded(
                f"the template makes more than {MAX_MADE:,} characters of values in all",
                "a prompt is at most a few thousand characters",
            )


def weigh(value: Any, limit: int = MAX_TEXT + 1) -> int:
    """About how many characters ``value`` shows as text; counting stops past ``limit``.

    A value shared by many items (``[big] * 100``) counts every time it is shown; every item
    counts at least 2, so even a value that contains itself is weighed in bounded time."""
    total, stack = 0, [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item) + 2
        elif isinstance(item, bool) or item is None:
            total += 5
        elif isinstance(item, int):
            total += int(item.bit_length() / _BITS_PER_DIGIT) + 1
        elif isinstance(item, (*_SEQUENCES, dict)):
            total += 2 + 2 * len(item)
            stack.extend(item.items() if isinstance(item, dict) else item)
        else:
            total += 24
    return total


def check_printable(value: Any) -> None:
    """Refuse to show anything but data: the text of other objects holds a memory address,
    which would make the prompt (and the cache key) differ on every run."""
    # Past MAX_TEXT items the value is too big to show anyway (weigh() says so).
    stack, seen = [value], 0
    while stack and seen <= MAX_TEXT:
        item = stack.pop()
        seen += 1
        if isinstance(item, _DATA):
            continue
        if isinstance(item, _SEQUENCES):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.items())
        else:
            name = getattr(type(item), "__name__", "object")
            raise BudgetExceeded(
                f"a prompt cannot show a {name} (its text differs on every run)",
                "show data only: call the function, or turn a sequence into text with |join",
            )


def binop_weight(operator: str, left: Any, right: Any) -> int:
    """The weight of ``left <operator> right``, worked out before computing it."""
    if operator == "*":
        if isinstance(left, int) and isinstance(right, int):
            return _int_weight(left.bit_length() + right.bit_length())
        if isinstance(left, str | list | tuple) and isinstance(right, int):
            return _length(left) * max(right, 0)
        if isinstance(right, str | list | tuple) and isinstance(left, int):
            return _length(right) * max(left, 0)
        return 24
    if operator == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
            return _int_weight(int(right * math.log2(abs(left))))
        return 24
    if operator == "%" and isinstance(left, str):
        return _printf_weight(left, right)
    return _length(left) + _length(right)


def _length(value: Any) -> int:
    return len(value) if isinstance(value, str) else weigh(value)


def _int_weight(bits: int) -> int:
    digits = int(bits / _BITS_PER_DIGIT) + 1
    if digits > MAX_INT_DIGITS:
        raise BudgetExceeded(
            f"the template computes a number of about {digits:,} digits "
            f"(at most {MAX_INT_DIGITS:,})",
            "a prompt has no use for numbers this large",
        )
    return digits


def _printf_weight(spec: str, args: Any) -> int:
    """``spec % args``: its text, its arguments and every width and precision it pads to."""
    widths = 0
    for match in _PRINTF_SPEC.finditer(spec):
        for number in match.groups():
            if number == "*":
                _too_wide(match.group())
            widths += _size(number or "0", match.group())
    return len(spec) + weigh(args) + widths


def _format_weight(spec: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """``spec.format(...)``: the same, for str.format's fields (a nested field, as in
    ``{:>{width}}``, could pad to anything: refused)."""
    widths = 0
    for _, field, field_spec, _ in string.Formatter().parse(spec):
        if field is None or not field_spec:
            continue
        if "{" in field_spec:
            raise BudgetExceeded(
                f"the format '{{:{field_spec[:40]}}}' takes its width from a value",
                "write the width in the format, e.g. {:>10}",
            )
        widths += sum(_size(run, field_spec) for run in _DIGITS.findall(field_spec))
    for value in (*args, *kwargs.values()):
        check_printable(value)
    return len(spec) + weigh(args) + weigh(kwargs) + widths


def _size(digits: str, spec: str) -> int:
    if len(digits) > 6 or int(digits) > MAX_SIZE_ARGUMENT:
        _too_wide(spec)
    return int(digits)


def _too_wide(spec: str) -> None:
    raise BudgetExceeded(
        f"the format '{spec[:40]}' pads to a width the template cannot afford",
        f"use literal widths up to {MAX_SIZE_ARGUMENT:,}",
    )


def call_weight(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """What a call of a string method will make; 0 when only its result can say."""
    wrapped = getattr(obj, "__wrapped__", obj)  # the sandbox wraps str.format
    owner = getattr(wrapped, "__self__", None)
    if not isinstance(owner, str):
        return 0
    name = getattr(wrapped, "__name__", "")
    if name == "format":
        return _format_weight(owner, args, kwargs)
    if name == "format_map" and args and isinstance(args[0], dict):
        return _format_weight(owner, (), args[0])
    if name in ("center", "ljust", "rjust", "zfill") and args and isinstance(args[0], int):
        return max(len(owner), args[0])
    if name == "expandtabs":
        size = args[0] if args and isinstance(args[0], int) else 8
        return len(owner) * max(size, 1)
    if name == "join" and args:
        items = list(args[0])
        return weigh(items) + len(owner) * len(items)
    if name == "replace" and len(args) >= 2:
        return _replace_weight(owner, args[0], args[1], args[2] if len(args) > 2 else -1)
    return len(owner)


def _replace_weight(text: str, old: Any, new: Any, count: Any) -> int:
    if not isinstance(old, str) or not isinstance(new, str):
        return len(text)
    found = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return len(text) + found * len(new)


def _join_weight(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    items = list(value) if isinstance(value, Iterable) else []
    for item in items:
        check_printable(item)
    separator = args[0] if args else kwargs.get("d", "")
    return weigh(items) + len(str(separator)) * len(items)


def _indent_weight(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    width = args[0] if args else kwargs.get("width", 4)
    size = width if isinstance(width, int) else len(str(width))
    lines = str(value).count("\n") + 1 if isinstance(value, str) else 1
    return weigh(value) + max(size, 0) * lines


def _wordwrap_weight(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    wrap = args[2] if len(args) > 2 else kwargs.get("wrapstring") or "\n"
    return weigh(value) * (1 + len(str(wrap)))


_FILTER_WEIGHTS: dict[str, Callable[[Any, tuple[Any, ...], dict[str, Any]], int]] = {
    "center": lambda v, a, k: max(weigh(v), a[0] if a and isinstance(a[0], int) else 80),
    "indent": _indent_weight,
    "wordwrap": _wordwrap_weight,
    "join": _join_weight,
    "replace": lambda v, a, k: _replace_weight(
        str(v), a[0] if a else None, a[1] if len(a) > 1 else None, a[2] if len(a) > 2 else -1
    ),
    "format": lambda v, a, k: _printf_weight(str(v), a or k),
    "sum": lambda v, a, k: _sum_weight(a, k),
}
# Filters that turn their input into text: it must be data (see check_printable).
TEXT_FILTERS = frozenset(
    [
        "capitalize",
        "center",
        "e",
        "escape",
        "forceescape",
        "format",
        "indent",
        "lower",
        "pprint",
        "replace",
        "safe",
        "string",
        "striptags",
        "title",
        "trim",
        "truncate",
        "upper",
        "urlencode",
        "urlize",
        "wordcount",
        "wordwrap",
    ]
)


def _sum_weight(args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    start = args[1] if len(args) > 1 else kwargs.get("start", 0)
    if not isinstance(start, int | float):
        raise BudgetExceeded("|sum adds numbers", "use |join to put texts together")
    return 24


def filter_weight(name: str, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """What filter ``name`` will make of ``value``, worked out before it runs; 0 for the
    filters whose output is no bigger than what they are given (only their result can say)."""
    estimate = _FILTER_WEIGHTS.get(name)
    if estimate is not None:
        return estimate(value, args, kwargs)
    if name in TEXT_FILTERS or name == "tojson":
        return weigh(value) + weigh(args)
    return 0
