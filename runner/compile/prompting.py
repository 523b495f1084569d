"""Prompts of a node: the variables its templates see, and the rendered text, checked.

Template errors are reported where the prompt was written; a broken template file is one
error, not one per node that uses it.
"""

from __future__ import annotations

from typing import Any

from runner.errors import Diagnostics
from runner.pipeline.records import Character, Node, Pipeline, PromptSpec
from runner.pipeline.templates import PromptRenderer, TemplateProblem

# fal publishes 5,000 characters as the longest prompt of its LTX-2 endpoints (the LTX-Video
# ones publish no limit, and their text encoder reads far less); the same bound for all.
MAX_PROMPT_CHARS = 5_000


class Prompts:
    """Renders the prompts of one pipeline's nodes; problems are added to ``diags``."""

    def __init__(self, pipeline: Pipeline, diags: Diagnostics) -> None:
        self.pipeline = pipeline
        self.diags = diags
        self.renderer = PromptRenderer(
            pipeline.templates_dir or pipeline.base_dir / "templates", pipeline.project
        )
        self._template_reported: set[str] = set()

    def context(self, node: Node, character: Character | None) -> dict[str, Any]:
        spec_vars = node.prompt.vars if node.prompt else {}
        return {
            **self.pipeline.vars,
            **(character.vars if character else {}),
            **spec_vars,
            "character": {
                "name": character.name,
                "description": character.description,
                "vars": dict(character.vars),
            }
            if character
            else None,
            "node": {"name": node.name, "kind": node.kind, "description": node.description},
            "pipeline": {"name": self.pipeline.name, "description": self.pipeline.description},
        }

    def render(self, spec: PromptSpec | None, context: dict[str, Any], node: Node) -> str | None:
        if spec is None:
            return None
        try:
            text = self.renderer.render(spec, context)
        except TemplateProblem as problem:
            self._template_error(problem, spec, node)
            return None
        if not text:
            self.diags.error(
                "prompt-empty",
                "the prompt renders to empty text",
                self.pipeline.source.locate(spec.key_path),
                "write what the shot shows",
            )
            return None
        if len(text) > MAX_PROMPT_CHARS:
            self.diags.error(
                "prompt-too-long",
                f"the prompt is {len(text):,} characters long (node {node.name}); fal takes "
                f"at most {MAX_PROMPT_CHARS:,}",
                self.pipeline.source.locate(spec.key_path),
                "a prompt describes one shot: subject, setting, one action, camera, light",
            )
            return None
        return text

    def _template_error(self, problem: TemplateProblem, spec: PromptSpec, node: Node) -> None:
        # A broken template file is one error, not one per node that uses it.
        per_file = (
            problem.line is not None
            and problem.template != "<inline>"
            and ("syntax error" in problem.message)
        )
        if per_file or problem.message.startswith("no template named"):
            if problem.describe() in self._template_reported:
                return
            self._template_reported.add(problem.describe())
        where = self.pipeline.source.locate(spec.key_path)
        self.diags.error(
            "template", f"{problem.describe()} (node {node.name})", where, problem.hint
        )
