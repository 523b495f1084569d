"""The compile memo's payload: what it holds, pickled, and the allowlisted loader.

Three pickles one after the other, behind their lengths: the findings and the number of
steps (what ``validate`` reads), the slimmed result (what a plan or run starts from), and
the print of every node (what a recompile reuses steps by, ``runner.compile.reuse``), with
the prints of the nodes that passed the schema and lint's findings of every node's step. The
loader builds only shotgraph's own record types (dataclasses and enums), paths and plain
values: the store may sit in the project, where a pull request could commit a memo.
"""

from __future__ import annotations

import copyreg
import dataclasses
import enum
import importlib
import io
import operator
import pickle
import struct
import sys
from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

from runner.compile.check import CheckResult, collector_paused
from runner.compile.steps import Step
from runner.pipeline.records import Defaults
from runner.pipeline.sourcemap import SourceMap

_SAFE_BUILTINS = frozenset({"frozenset", "set", "slice", "complex", "bytearray"})
# The payload: the lengths of the findings' and the result's pickles, then the three.
_PARTS = struct.Struct(">QQ")
FINDINGS, RESULT, PRINTS = range(3)
# What pickle writes as its NEWOBJ opcode (a reducer naming it gets the default's bytes).
_NEWOBJ: Any = copyreg.__newobj__  # type: ignore[attr-defined]


def _slim(result: CheckResult) -> CheckResult:
    """The result without the pipeline's records and line maps (and, as it is pickled,
    without the steps' settings)."""
    assert result.compiled is not None
    pipeline = result.compiled.pipeline
    bare = replace(
        pipeline,
        source=SourceMap(pipeline.path),
        vars={},
        defaults=Defaults(),
        presets={},
        characters={},
        motions={},
        nodes={},
        broken=frozenset(),
    )
    slim = replace(result.compiled, pipeline=bare)
    return replace(result, compiled=slim, shown=False, memo_id=None)


def _reduce_source(source: SourceMap) -> tuple[Any, tuple[str | None]]:
    # Line maps stay behind: only the file they map is kept. (A table entry, not a
    # ``persistent_id``: that one is a Python call for each of the payload's 700,000
    # objects, and tripled the time of a dump.)
    return SourceMap, (None if source.file is None else str(source.file),)


def _reduce_step(step: Step) -> tuple[Any, tuple[type[Step]], dict[str, Any]]:
    # What pickle does of any dataclass (NEWOBJ, then the fields), without the settings:
    # where each parameter came from is read with the records only (plan --verbose, a 422).
    state = step.__dict__
    return _NEWOBJ, (Step,), state | {"settings": {}} if step.settings else state


def _slotted(cls: Any, values: Any) -> Any:
    """A frozen dataclass with slots, of its fields' values in order: what pickle's
    default does (``_dataclass_setstate``) without looking the fields up for each one."""
    names = _slot_names(cls) if isinstance(cls, type) else None
    if names is None or not isinstance(values, tuple) or len(values) != len(names):
        raise pickle.UnpicklingError("not a memo")
    built = object.__new__(cls)
    for name, value in zip(names, values, strict=True):
        object.__setattr__(built, name, value)
    return built


@cache
def _slot_names(cls: type) -> tuple[str, ...] | None:
    """The fields of ``cls`` in order, if it is one of shotgraph's dataclasses with slots."""
    if not (cls.__module__.startswith("runner.") and dataclasses.is_dataclass(cls)):
        return None
    if "__slots__" not in cls.__dict__:
        return None
    return tuple(field.name for field in dataclasses.fields(cls))


@cache
def _reducer(cls: type) -> Callable[[Any], tuple[Any, tuple[type, tuple[Any, ...]]]]:
    names = _slot_names(cls)
    assert names
    values = operator.attrgetter(*names)
    if len(names) == 1:
        return lambda record: (_slotted, (cls, (values(record),)))
    return lambda record: (_slotted, (cls, values(record)))


def _dispatch() -> dict[Any, Any]:
    """How each type is pickled: shotgraph's slotted dataclasses by :func:`_slotted` (a
    fifth of the time of a dump and a load was the standard library finding their fields
    for each record), line maps and steps slimmed."""
    table = copyreg.dispatch_table | {SourceMap: _reduce_source, Step: _reduce_step}
    for module in [m for name, m in sys.modules.items() if name.startswith("runner.")]:
        for value in list(vars(module).values()):
            if isinstance(value, type) and value not in table and _slot_names(value):
                table[value] = _reducer(value)
    return table


def _bare_source(file: Any) -> SourceMap:
    """A line map without lines, of a file named by a string (or of none)."""
    if file is not None and not isinstance(file, str):
        raise pickle.UnpicklingError("not a memo")
    return SourceMap(None if file is None else Path(file))


class _Unpickler(pickle.Unpickler):
    """Builds shotgraph's records, paths and plain values; nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == (SourceMap.__module__, SourceMap.__name__):
            return _bare_source
        if (module, name) == (__name__, _slotted.__name__):
            return _slotted
        if module == "pathlib" and name in ("PosixPath", "PurePosixPath"):
            return super().find_class(module, name)
        if module == "builtins" and name in _SAFE_BUILTINS:
            return super().find_class(module, name)
        if module.startswith("runner."):
            found = getattr(importlib.import_module(module), name, None)
            if isinstance(found, type) and (
                dataclasses.is_dataclass(found) or issubclass(found, enum.Enum)
            ):
                return found
        raise pickle.UnpicklingError(f"a memo does not hold {module}.{name}")


def pack(
    result: CheckResult,
    prints: Mapping[str, bytes],
    passed: list[bytes],
    warned: Mapping[str, Any],
) -> bytes:
    """The payload of a memo of ``result`` (clean), beside it its nodes' prints, the
    prints of the nodes that passed the schema and lint's findings of each node's step."""
    assert result.compiled is not None
    findings = (result.diagnostics, len(result.compiled.steps))
    steps = result.compiled.steps
    mine = {name: prints[name] for name in steps if name in prints}
    kept = (mine, passed, {name: warned[name] for name in mine if name in warned})
    parts = []
    dispatch = _dispatch()
    for value in (findings, _slim(result), kept):
        buffer = io.BytesIO()
        pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
        pickler.dispatch_table = dispatch
        pickler.dump(value)
        parts.append(buffer.getvalue())
    return _PARTS.pack(len(parts[0]), len(parts[1])) + b"".join(parts)


def part(payload: bytes, which: int) -> Any:
    """One of the payload's pickles, loaded; None when damaged or not a memo's."""
    if len(payload) < _PARTS.size:
        return None
    first, second = _PARTS.unpack_from(payload)
    bounds = [_PARTS.size, _PARTS.size + first, _PARTS.size + first + second, len(payload)]
    if bounds[2] > len(payload):
        return None
    # Read in place (a BytesIO of bytes shares them): a slice would copy megabytes.
    stream = io.BytesIO(payload)
    stream.seek(bounds[which])
    loaded = _load(stream)
    return loaded if stream.tell() == bounds[which + 1] else None


def unpickle(data: bytes) -> Any:
    """A pickle a memo holds, loaded; None when damaged or not a memo's."""
    return _load(io.BytesIO(data))


def _load(stream: io.BytesIO) -> Any:
    # Tens of thousands of objects, none of them garbage: no collection while they are
    # built (it would walk them all, again and again).
    with collector_paused():
        try:
            return _Unpickler(stream).load()
        except Exception:  # a damaged or foreign memo, whatever it holds: compile instead
            return None
