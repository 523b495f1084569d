"""The template sandbox with a budget: a pipeline's templates cannot hang CI or exhaust memory.

Jinja's immutable sandbox keeps templates away from Python internals; this adds bounds on
what a template may *spend*, since a pull request can submit one written to hang CI:

- **steps**: every loop iteration, call, filter and include is a step; a render takes at
  most :data:`MAX_STEPS` (nested ``range(100000)`` loops stop in milliseconds);
- **size**: every value a template makes is weighed (about the length of its text) *before*
  it is made where making it is the expensive part (``'a' * 10**10``, ``2 ** 10**9``,
  ``'x'|center(10**9)``, a join or a concatenation of big values); no text may exceed
  :data:`MAX_TEXT` characters, and all the values of one render together :data:`MAX_MADE`;
- **time**: a render stops after :data:`MAX_SECONDS`, a backstop for what the steps miss;
- **determinism**: a prompt may only show data (text, numbers, lists, mappings), never an
  object whose text holds a memory address; ``lipsum`` and ``random`` are gone.

The bounds and the weighing live in :mod:`runner.pipeline.template_budget`. Recursion (a macro that
calls itself) is Python's ``RecursionError``; the caller reports it.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from types import CodeType
from typing import Any

from jinja2 import Template, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.sandbox import ImmutableSandboxedEnvironment

from runner.pipeline.template_budget import (
    MAX_SECONDS,
    MAX_SIZE_ARGUMENT,
    MAX_TEXT,
    TEXT_FILTERS,
    Budget,
    BudgetExceeded,
    binop_weight,
    call_weight,
    check_printable,
    filter_weight,
    weigh,
)

__all__ = ["MAX_SECONDS", "BoundedSandbox", "BudgetExceeded"]


class BudgetedCodeGenerator(CodeGenerator):
    """Compiles loops to count their iterations and ``~`` to weigh what it joins."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loop_iterables: list[nodes.Node] = []  # Jinja has no custom node types

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        self._loop_iterables.append(node.iter)
        super().visit_For(node, frame)

    def visit(self, node: nodes.Node, *args: Any, **kwargs: Any) -> Any:
        if any(node is iterable for iterable in self._loop_iterables):
            self._loop_iterables = [n for n in self._loop_iterables if n is not node]
            self.write("environment.budget_iter(")
            super().visit(node, *args, **kwargs)
            self.write(")")
            return None
        return super().visit(node, *args, **kwargs)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.bounded_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


# Compiling a template is most of the cost of checking a pipeline. A process that checks
# pipelines again and again (a studio, a report server, a test session) compiles a source
# once: its code, by source, name, file name and the environment's options, for every
# sandbox of the process. Long sources (a hostile file) are compiled each time, not kept.
_COMPILED: OrderedDict[tuple[object, ...], CodeType] = OrderedDict()
_COMPILED_ENTRIES = 256
_COMPILED_MAX_SOURCE = 32 * 1024
_COMPILED_LOCK = threading.Lock()


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, plus the budget of :class:`Budget` for each render."""

    code_generator_class = BudgetedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        # What the generated code depends on besides the source (the loader does not count).
        self._options = tuple(sorted((k, repr(v)) for k, v in options.items() if k != "loader"))
        self.budget = Budget()
        self.finalize = self._finalize
        # No randomness: the same pipeline renders the same prompts (and cache keys).
        self.globals.pop("lipsum", None)
        self.filters.pop("random", None)
        self.filters = {name: _bounded_filter(self, name, f) for name, f in self.filters.items()}

    def fresh_budget(self, seconds: float = MAX_SECONDS) -> None:
        self.budget = Budget(seconds)

    def compile(  # type: ignore[override]  # Jinja overloads it on ``raw``
        self,
        source: str | nodes.Template,
        name: str | None = None,
        filename: str | None = None,
        raw: bool = False,
        defer_init: bool = False,
    ) -> str | CodeType:
        """Jinja's compile, once per source in this process (see :data:`_COMPILED`)."""
        if raw or not isinstance(source, str) or len(source) > _COMPILED_MAX_SOURCE:
            return super().compile(source, name, filename, raw, defer_init)  # type: ignore[call-overload, no-any-return]
        key = (self._options, source, name, filename, defer_init)
        with _COMPILED_LOCK:
            code = _COMPILED.get(key)
            if code is not None:
                _COMPILED.move_to_end(key)
                return code
        spent = (self.budget.steps, self.budget.made)
        code = super().compile(source, name, filename, False, defer_init)
        # Folding a constant through a filter spends the budget while compiling, and what
        # folds depends on what the budget has left: such code is not kept, so that a
        # template compiles and spends alike whether it was compiled before or not.
        if (self.budget.steps, self.budget.made) == spent:
            with _COMPILED_LOCK:
                _COMPILED[key] = code
                if len(_COMPILED) > _COMPILED_ENTRIES:
                    _COMPILED.popitem(last=False)
        return code

    # -- what generated code calls --------------------------------------------------------

    def budget_iter(self, iterable: Iterable[Any]) -> Iterator[Any]:
        for item in iterable:
            self.budget.step()
            yield item

    def bounded_concat(self, parts: Iterable[Any]) -> str:
        items = list(parts)
        for item in items:
            check_printable(item)
        self.budget.make(sum(weigh(item) for item in items))
        return "".join(str(item) for item in items)

    def concat(self, parts: Iterable[str]) -> str:
        # Joins every buffer (a macro's output, a block, the whole render) as it streams.
        items, size = [], 0
        for part in parts:
            size += len(part)
            if size > MAX_TEXT:
                self.budget.make(size)  # refuses: stop before the buffer grows further
            items.append(part)
        self.budget.make(size)
        return "".join(items)

    def _finalize(self, value: Any) -> Any:
        check_printable(value)
        self.budget.make(weigh(value))
        return value

    def get_template(
        self,
        name: str | Template,
        parent: str | None = None,
        globals: MutableMapping[str, Any] | None = None,
    ) -> Template:
        self.budget.step()  # an include, an import, an extends
        return super().get_template(name, parent, globals)

    # -- sandbox hooks ---------------------------------------------------------------------

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        self.budget.make(binop_weight(operator, left, right))
        if operator == "%" and isinstance(left, str):
            check_printable(right)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        __self.budget.step()
        __self.budget.make(call_weight(__obj, args, kwargs))
        result = super().call(__context, __obj, *args, **kwargs)
        __self.budget.make(weigh(result))
        return result


# -- filters -------------------------------------------------------------------------------


def _bounded_filter(env: BoundedSandbox, name: str, func: Callable[..., Any]) -> Any:
    """``func`` counted as a step, its size arguments bounded, its output weighed before
    it is made when that is where the cost is, and weighed after in every case."""
    skip = 1 if hasattr(func, "jinja_pass_arg") else 0

    @functools.wraps(func)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        env.budget.step()
        value, rest = args[skip] if len(args) > skip else None, args[skip + 1 :]
        if name == "join" and isinstance(value, Iterator):
            value = list(value)  # weighed first, then joined: a generator runs once
            args = (*args[:skip], value, *rest)
        for argument in (*rest, *kwargs.values()):
            if isinstance(argument, int) and abs(argument) > MAX_SIZE_ARGUMENT:
                raise BudgetExceeded(
                    f"|{name} is given {argument:,}; filters take numbers up to "
                    f"{MAX_SIZE_ARGUMENT:,}",
                    "a prompt has no use for sizes this large",
                )
        if name in TEXT_FILTERS:
            check_printable(value)
        env.budget.make(filter_weight(name, value, rest, kwargs))
        result = func(*args, **kwargs)
        if not isinstance(result, Iterator):
            env.budget.make(weigh(result))
        return result

    return bounded
