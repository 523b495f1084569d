"""Bytes to text for the files a pipeline is made of, with the line and column of a problem.

Pipelines, preset files and templates are UTF-8 (a byte order mark is allowed), or UTF-16
with its byte order mark, as YAML allows. Control characters other than tab, line feed and
carriage return are refused, as YAML does, but here with a line and a column rather than a
byte position, and for templates too (a NUL in a prompt is never what was meant).
"""

from __future__ import annotations

import codecs
import functools
import re
import unicodedata

# What YAML 1.2 calls printable: tab, LF, CR, the printable ASCII range, NEL and the rest of
# Unicode but C1 controls, surrogates and the two non-characters U+FFFE and U+FFFF.
_NOT_PRINTABLE = "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
# The same, for a text of ASCII only: compiled in microseconds, where the whole range takes
# milliseconds (every command that reads a pipeline pays them).
_NOT_PRINTABLE_ASCII = re.compile("[^\x09\x0a\x0d\x20-\x7e]")
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"),
)


class TextProblem(Exception):
    """A file is not text we can read: what, where (1-based line and column), how to fix it."""

    def __init__(self, message: str, line: int, column: int, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.hint = hint


def decode(data: bytes) -> str:
    """The text of ``data``; :class:`TextProblem` for bytes that are not text."""
    encoding, name = "utf-8", "UTF-8"
    for bom, codec, label in _BOMS:
        if data.startswith(bom) and not data.startswith(codecs.BOM_UTF32_LE):
            encoding, name = codec, label
            break
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line, column = _position(data[: exc.start], encoding)
        bad = data[exc.start : min(exc.end, exc.start + 4)].hex(" ")
        raise TextProblem(
            f"line {line}, column {column}: the file is not valid {name} (bytes {bad})",
            line,
            column,
            "save the file as UTF-8",
        ) from None
    check_printable(text)
    return text


def check_printable(text: str) -> None:
    """:class:`TextProblem` at the first control character (or lone surrogate) of ``text``."""
    pattern = _NOT_PRINTABLE_ASCII if text.isascii() else _not_printable()
    found = pattern.search(text)
    if found is None:
        return
    start = found.start()
    line = text.count("\n", 0, start) + 1
    column = start - (text.rfind("\n", 0, start) + 1) + 1
    char = found.group()
    name = unicodedata.name(char, "") or _CONTROL_NAMES.get(ord(char), "")
    if not name:
        name = "a lone surrogate" if 0xD800 <= ord(char) <= 0xDFFF else "a control character"
    raise TextProblem(
        f"line {line}, column {column}: character U+{ord(char):04X} ({name}) is not allowed",
        line,
        column,
        "remove it; only tabs, line breaks and printable characters are allowed",
    )


@functools.cache
def _not_printable() -> re.Pattern[str]:
    return re.compile(_NOT_PRINTABLE)


def _position(prefix: bytes, encoding: str) -> tuple[int, int]:
    """1-based line and column just after ``prefix``."""
    text = prefix.decode(encoding, errors="replace")
    line = text.count("\n") + 1
    return line, len(text) - (text.rfind("\n") + 1) + 1


_CONTROL_NAMES = {
    0x00: "NUL",
    0x07: "BELL",
    0x08: "BACKSPACE",
    0x0B: "VERTICAL TAB",
    0x0C: "FORM FEED",
    0x1B: "ESCAPE",
    0x7F: "DELETE",
}
