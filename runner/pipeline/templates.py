"""Prompt templates: a sandboxed Jinja environment with strict undefined variables.

A pipeline from a pull request must not run code, so templates render in Jinja's immutable
sandbox; a variable a template uses but nobody defines is an error, not an empty string.
Templates are looked up in the pipeline's own template directory first, then in the ones that
ship with shotgraph. Rendered prompts have their whitespace collapsed to single spaces, so a
template can be laid out over lines without changing the prompt (and the cache key).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from jinja2 import (
    ChoiceLoader,
    FileSystemLoader,
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
from jinja2.sandbox import ImmutableSandboxedEnvironment

from runner.pipeline.records import PromptSpec
from runner.resources import templates_dir

_SPACE = re.compile(r"\s+")


class TemplateProblem(Exception):
    """A template could not render: which template, which line, what, and how to fix it."""

    def __init__(self, message: str, *, template: str, line: int | None, hint: str | None) -> None:
        super().__init__(message)
        self.message = message
        self.template = template
        self.line = line
        self.hint = hint

    def describe(self) -> str:
        where = f"template {self.template}" + (f" line {self.line}" if self.line else "")
        return f"{where}: {self.message}"


class PromptRenderer:
    """Renders :class:`PromptSpec` values for one pipeline."""

    def __init__(self, local_dir: Path | None) -> None:
        self.search_path = [p for p in (local_dir, templates_dir()) if p is not None]
        self.env = ImmutableSandboxedEnvironment(
            loader=ChoiceLoader([FileSystemLoader(str(p)) for p in self.search_path]),
            undefined=StrictUndefined,
            autoescape=False,
            cache_size=-1,
            auto_reload=False,
        )
        # Jinja's `random` filter would make prompts (and so cache keys) change every run.
        self.env.filters.pop("random", None)
        self._inline: dict[str, Template] = {}
        self._memo: dict[tuple[str, str], str] = {}
        self._reads: dict[str, frozenset[str] | None] = {}

    def render(self, spec: PromptSpec, context: Mapping[str, Any]) -> str:
        """The prompt text, whitespace collapsed. Raises :class:`TemplateProblem`."""
        if spec.text is not None:
            return normalise(spec.text)
        name = spec.template or "<inline>"
        try:
            template = self._template(spec)
            reads = self._variables(spec, template)
            if reads is None:
                return normalise(template.render(**context))
            # Rendering is pure: the same template with the same values of the variables it
            # reads renders the same text (extend hops of an episode share their prompts).
            memo_key = (name if spec.template else spec.inline or "", _fingerprint(reads, context))
            text = self._memo.get(memo_key)
            if text is None:
                text = self._memo[memo_key] = normalise(template.render(**context))
            return text
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
            template_name, line = _origin(exc.__traceback__, name)
            raise TemplateProblem(
                str(exc.message),
                template=template_name,
                line=line,
                hint="define it in the prompt's vars, the character's vars or the pipeline's vars",
            ) from None
        except SecurityError as exc:
            template_name, line = _origin(exc.__traceback__, name)
            raise TemplateProblem(
                f"not allowed in a template: {exc}",
                template=template_name,
                line=line,
                hint="templates can only format variables; they cannot reach Python internals",
            ) from None
        except TemplateError as exc:
            template_name, line = _origin(exc.__traceback__, name)
            raise TemplateProblem(str(exc), template=template_name, line=line, hint=None) from None
        except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
            template_name, line = _origin(exc.__traceback__, name)
            raise TemplateProblem(
                f"{type(exc).__name__}: {exc}", template=template_name, line=line, hint=None
            ) from None

    def _template(self, spec: PromptSpec) -> Template:
        if spec.template is not None:
            return self.env.get_template(spec.template)
        source = spec.inline or ""
        found = self._inline.get(source)
        if found is None:
            found = self._inline[source] = self.env.from_string(source)
        return found

    def _variables(self, spec: PromptSpec, template: Template) -> frozenset[str] | None:
        """The variables a template reads, or None when that cannot be known statically (it
        includes, imports or extends other templates)."""
        key = spec.template or f"inline:{spec.inline}"
        if key not in self._reads:
            source = self._source(spec)
            parsed = self.env.parse(source)
            composite = any(
                True
                for _ in parsed.find_all(
                    (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)
                )
            )
            self._reads[key] = (
                None if composite else frozenset(meta.find_undeclared_variables(parsed))
            )
        return self._reads[key]

    def _source(self, spec: PromptSpec) -> str:
        if spec.template is None:
            return spec.inline or ""
        loader = self.env.loader
        assert loader is not None
        return loader.get_source(self.env, spec.template)[0]


def _fingerprint(names: frozenset[str], context: Mapping[str, Any]) -> str:
    values = {name: context.get(name, "\x00undefined") for name in names}
    return json.dumps(values, sort_keys=True, default=repr)


def normalise(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def _origin(tb: TracebackType | None, fallback: str) -> tuple[str, int | None]:
    """The template file and line where a render error happened (Jinja keeps them in the
    traceback frames of compiled templates)."""
    found: tuple[str, int | None] = (fallback, None)
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith((".j2", ".jinja", ".txt")) or filename == "<template>":
            shown = fallback if filename == "<template>" else Path(filename).name
            found = (shown, tb.tb_lineno)
        tb = tb.tb_next
    return found
