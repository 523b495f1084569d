"""YAML 1.2 core-schema resolution of plain scalars, for runner/pipeline/yamlsrc.py.

``16:9`` is a string (not the base-60 integer 969 of YAML 1.1), and so are ``yes``/``no``/
``on``/``off`` and dates; only ``true``/``false`` are booleans.
"""

from __future__ import annotations

import re
from typing import Any

_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"^[-+]?[0-9]+$|^0o[0-7]+$|^0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_MAYBE_NOT_STRING = frozenset("0123456789+-.~nNtTfF")
_SPECIAL_FLOAT = {
    ".inf": float("inf"),
    "+.inf": float("inf"),
    "-.inf": float("-inf"),
    ".nan": float("nan"),
}


def too_long_integer(text: str, digits: int) -> bool:
    """Whether ``text`` is an integer of more than ``digits`` characters (checked before
    Python converts it: past 4,300 digits it raises ValueError)."""
    return len(text) > digits and _INT.match(text) is not None


def resolve_plain(text: str) -> Any:
    """YAML 1.2 core schema resolution of a plain scalar."""
    if text and text[0] not in _MAYBE_NOT_STRING:
        return text  # the common case: a word
    if _NULL.match(text):
        return None
    if text in _BOOL:
        return _BOOL[text]
    if _INT.match(text):
        return int(text, 0) if text.startswith(("0o", "0x")) else int(text)
    if _FLOAT.match(text):
        return float(text)
    if text.lower() in _SPECIAL_FLOAT:
        return _SPECIAL_FLOAT[text.lower()]
    return text
