"""Where Jinja finds a template: every lookup obeys the confinement rule.

A template named by a pipeline (``template: shot.j2``) or by another template (``{% include
%}``, ``{% import %}``, ``{% extends %}``) is looked up in the pipeline's own template
directory, whose files must really lie inside the project (a ``templates/`` that is a symlink
to ``/proc/self``, or a ``shot.j2`` that is a symlink to ``~/.ssh/id_rsa``, is refused), then
in the templates that ship with shotgraph. Every file is size-limited and must be text.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from jinja2 import BaseLoader, Environment, TemplateError, TemplateNotFound

from runner.pipeline.confine import Project, Refused, confine, read_confined
from runner.pipeline.textfile import TextProblem, decode

# Prompt templates are a few lines; this is generous and still cheap to compile.
MAX_TEMPLATE_BYTES = 256 * 1024


class TemplateRefused(TemplateError):
    """A template file breaks the confinement rule or is not text; with a hint."""

    def __init__(self, message: str, hint: str, line: int | None = None) -> None:
        super().__init__(message)
        self.hint = hint
        self.line = line


class ConfinedLoader(BaseLoader):
    """Looks templates up in ``(directory, project)`` pairs, in order: a file of a directory
    must really lie inside its project."""

    def __init__(self, search: list[tuple[Path, Project]]) -> None:
        self.search = search
        self.names: dict[str, str] = {}  # template name by file name, for error lines
        self.sources: dict[str, str] = {}  # the text read, by template name

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        pieces = _pieces(template)
        for directory, project in self.search:
            candidate = directory.joinpath(*pieces)
            try:
                real = confine(project, candidate, directory, max_bytes=MAX_TEMPLATE_BYTES)
                if not real.exists():
                    continue
                data = read_confined(real, template, MAX_TEMPLATE_BYTES)
            except Refused as refused:
                raise TemplateRefused(
                    refused.message.replace(f"'{candidate}'", f"template '{template}'"),
                    refused.hint,
                ) from None
            try:
                source = decode(data)
            except TextProblem as problem:
                raise TemplateRefused(problem.message, problem.hint, problem.line) from None
            self.names[str(candidate)] = template
            self.sources[template] = source
            return source, str(candidate), _always_current
        raise TemplateNotFound(template)


def _pieces(template: str) -> list[str]:
    """The path components of a template name, which may not climb out of its directory."""
    if not template.isprintable():
        raise TemplateRefused(
            f"template name {template!r} holds a control character",
            "name templates with printable characters",
        )
    pieces = [piece for piece in template.replace("\\", "/").split("/") if piece not in ("", ".")]
    if ".." in pieces or template.startswith("/"):
        raise TemplateRefused(
            f"template name '{template}' leaves the templates directory",
            "name templates relative to the templates directory, without '..' or a leading '/'",
        )
    return pieces


def _always_current() -> bool:
    # Templates are read once per run; a file edited during a run does not change it.
    return True
