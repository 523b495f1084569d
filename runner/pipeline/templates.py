"""Prompt templates: a sandboxed Jinja environment with strict undefined variables.

A pipeline from a pull request must not run code, read files outside its project or hang CI,
so templates render in a sandbox with a budget (:mod:`runner.pipeline.sandbox`) and are read through
the confinement rule (:mod:`runner.pipeline.template_loader`); a variable a template uses but nobody
defines is an error, not an empty string. Templates are looked up in the pipeline's own
template directory first, then in the ones that ship with shotgraph. Rendered prompts have
their whitespace collapsed to single spaces, so a template can be laid out over lines without
changing the prompt (and the cache key).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from jinja2 import (
    StrictUndefined,
    Template,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
    meta,
    nodes,
)
from jinja2.exceptions import SecurityError

from runner.pipeline.confine import Project
from runner.pipeline.records import PromptSpec
from runner.pipeline.sandbox import MAX_SECONDS, BoundedSandbox, BudgetExceeded
from runner.pipeline.template_loader import MAX_TEMPLATE_BYTES, ConfinedLoader, TemplateRefused
from runner.resources import templates_dir

_SPACE = re.compile(r"\s+")
# All the templates of one pipeline together; each render has its own MAX_SECONDS too.
MAX_TOTAL_SECONDS = 5.0


class TemplateProblem(Exception):
    """A template could not render: which template, which line, what, and how to fix it."""

    def __init__(self, message: str, *, template: str, line: int | None, hint: str | None) -> None:
        super().__init__(message)
        self.message = message
        self.template = template
        self.line = line
        self.hint = hint

    def describe(self) -> str:
        shown = self.template if self.template.isprintable() else repr(self.template)
        where = f"template {shown}" + (f" line {self.line}" if self.line else "")
        return f"{where}: {self.message}"


class PromptRenderer:
    """Renders :class:`PromptSpec` values for one pipeline."""

    def __init__(self, local_dir: Path | None, project: Project | None = None) -> None:
        """``local_dir``: the pipeline's own templates, which must lie in ``project`` (by
        default, in ``local_dir`` itself)."""
        shipped = templates_dir()
        search = [(shipped, Project.at(shipped))]
        if local_dir is not None:
            search.insert(0, (local_dir, project or Project.at(local_dir)))
        self.search_path = [directory for directory, _ in search]
        self.loader = ConfinedLoader(search)
        self.env = BoundedSandbox(
            loader=self.loader,
            undefined=StrictUndefined,
            autoescape=False,
            cache_size=-1,
            auto_reload=False,
        )
        self._spent = 0.0  # CPU seconds, all renders together
        self._inline: dict[str, Template] = {}
        self._memo: dict[tuple[str, str], str] = {}
        self._reads: dict[str, frozenset[str] | None] = {}

    def render(self, spec: PromptSpec, context: Mapping[str, Any]) -> str:
        """The prompt text, whitespace collapsed. Raises :class:`TemplateProblem`."""
        if spec.text is not None:
            return normalise(spec.text)
        name = spec.template or "<inline>"
        started = time.thread_time()  # CPU time, as the budget counts it
        try:
            return self._render(spec, name, context)
        except BudgetExceeded as exc:
            template_name, line = self._origin(exc.__traceback__, name)
            raise TemplateProblem(
                str(exc), template=template_name, line=line, hint=exc.hint
            ) from None
        except TemplateRefused as exc:
            template_name, line = self._origin(exc.__traceback__, name)
            raise TemplateProblem(
                str(exc), template=template_name, line=exc.line or line, hint=exc.hint
            ) from None
        except RecursionError as exc:
            template_name, line = self._origin(exc.__traceback__, name)
            raise TemplateProblem(
                "the template calls itself without end (a macro, include, import or extends)",
                template=template_name,
                line=line,
                hint="make the recursion stop, or write the prompt without it",
            ) from None
        except MemoryError:
            raise TemplateProblem(
                "the template needs more memory than there is", template=name, line=None, hint=None
            ) from None
        except TemplateNotFound as exc:
            looked = ", ".join(str(p) for p in self.search_path)
            raise TemplateProblem(
                f"no template named '{exc.name}'",
                template=name,
                line=None,
                hint=f"looked in: {looked}",
            ) from None
        except TemplateSyntaxError as exc:
            raise TemplateProblem(
                f"syntax error: {exc.message}",
                template=exc.name or name,
                line=exc.lineno,
                hint="check the {{ }} and {% %} tags on this line",
            ) from None
        except UndefinedError as exc:
            template_name, line = self._origin(exc.__traceback__, name)
            raise TemplateProblem(
                str(exc.message),
                template=template_name,
                line=line,
                hint="define it in the prompt's vars, the character's vars or the pipeline's vars",
            ) from None
        except SecurityError as exc:
            template_name, line = self._origin(exc.__traceback__, name)
            raise TemplateProblem(
                f"not allowed in a template: {exc}",
                template=template_name,
                line=line,
                hint="templates can only format variables; they cannot reach Python internals",
            ) from None
        except TemplateError as exc:
            template_name, line = self._origin(exc.__traceback__, name)
            raise TemplateProblem(str(exc), template=template_name, line=line, hint=None) from None
        except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
            template_name, line = self._origin(exc.__traceback__, name)
            raise TemplateProblem(
                f"{type(exc).__name__}: {exc}", template=template_name, line=line, hint=None
            ) from None
        finally:
            self._spent += time.thread_time() - started

    def _render(self, spec: PromptSpec, name: str, context: Mapping[str, Any]) -> str:
        left = MAX_TOTAL_SECONDS - self._spent
        if left <= 0:
            raise BudgetExceeded(
                f"this pipeline's templates take more than {MAX_TOTAL_SECONDS:g} s of CPU time"
                " to render",
                "simplify the templates; prompt templates format a few values",
            )
        self.env.fresh_budget(min(MAX_SECONDS, left))
        try:
            template = self._template(spec)
            reads = self._variables(spec, template)
        except (RecursionError, SyntaxError):
            # Jinja's parser recurses, and Python refuses more than 20 nested blocks.
            raise TemplateRefused(
                "the template is nested too deeply to compile",
                "nest loops, conditions and parentheses a few levels at most",
            ) from None
        if reads is None:
            return normalise(template.render(**context))
        # Rendering is pure: the same template with the same values of the variables it
        # reads renders the same text (extend hops of an episode share their prompts).
        memo_key = (name if spec.template else spec.inline or "", _fingerprint(reads, context))
        text = self._memo.get(memo_key)
        if text is None:
            text = self._memo[memo_key] = normalise(template.render(**context))
        return text

    def _origin(self, tb: TracebackType | None, fallback: str) -> tuple[str, int | None]:
        return _origin(tb, fallback, self.loader.names.get)

    def _template(self, spec: PromptSpec) -> Template:
        if spec.template is not None:
            return self.env.get_template(spec.template)
        source = spec.inline or ""
        if len(source) > MAX_TEMPLATE_BYTES:
            raise TemplateRefused(
                f"the inline template is {len(source):,} characters long "
                f"(at most {MAX_TEMPLATE_BYTES:,})",
                "put long templates in files; a prompt is a few thousand characters",
            )
        found = self._inline.get(source)
        if found is None:
            found = self._inline[source] = self.env.from_string(source)
        return found

    def _variables(self, spec: PromptSpec, template: Template) -> frozenset[str] | None:
        """The variables a template reads, or None when that cannot be known statically (it
        includes, imports or extends other templates)."""
        key = spec.template or f"inline:{spec.inline}"
        if key not in self._reads:
            self._reads[key] = _reads_of(self._source(spec), self.env)
        return self._reads[key]

    def _source(self, spec: PromptSpec) -> str:
        if spec.template is None:
            return spec.inline or ""
        read = self.loader.sources.get(spec.template)  # read by get_template just before
        if read is not None:
            return read
        return self.loader.get_source(self.env, spec.template)[0]


# The variables a source reads, by source: every renderer's environment parses alike, and a
# process that checks pipelines again and again parses a template once (long ones each time).
_READS: dict[str, frozenset[str] | None] = {}
_READS_ENTRIES = 256
_READS_MAX_SOURCE = 32 * 1024


def _reads_of(source: str, env: BoundedSandbox) -> frozenset[str] | None:
    try:
        return _READS[source]
    except KeyError:
        pass
    parsed = env.parse(source)
    composite = any(
        True
        for _ in parsed.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends))
    )
    reads = None if composite else frozenset(meta.find_undeclared_variables(parsed))
    if len(source) <= _READS_MAX_SOURCE:
        if len(_READS) >= _READS_ENTRIES:
            _READS.pop(next(iter(_READS)), None)  # the oldest
        _READS[source] = reads
    return reads


def _fingerprint(names: frozenset[str], context: Mapping[str, Any]) -> str:
    values = {name: context.get(name, "\x00undefined") for name in names}
    return json.dumps(values, sort_keys=True, default=repr)


def normalise(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def _origin(
    tb: TracebackType | None, fallback: str, template_named: Callable[[str], str | None]
) -> tuple[str, int | None]:
    """The template and line where a render error happened (Jinja keeps them in the traceback
    frames of compiled templates, named after their files)."""
    found: tuple[str, int | None] = (fallback, None)
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        shown = fallback if filename == "<template>" else template_named(filename)
        if shown is not None:
            found = (shown, tb.tb_lineno)
        tb = tb.tb_next
    return found
