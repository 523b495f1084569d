"""The sandboxed template environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.model import PromptSpec
from runner.templates import PromptRenderer, TemplateProblem


def render(text: str, context: dict[str, object] | None = None, local: Path | None = None) -> str:
    return PromptRenderer(local).render(PromptSpec((), inline=text), context or {})


@pytest.mark.parametrize(
    "escape",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ joiner.__init__.__globals__['os'] }}",
        "{% set x = [] %}{{ x.append(1) }}",
    ],
)
def test_sandbox_refuses_escapes(escape: str) -> None:
    with pytest.raises(TemplateProblem, match=r"not allowed in a template|unsafe"):
        render(escape)


def test_undefined_variables_are_errors_with_a_line() -> None:
    with pytest.raises(TemplateProblem) as info:
        render("first line\n{{ missing }}")
    assert info.value.line == 2 and "'missing' is undefined" in info.value.message


def test_no_random_filter() -> None:
    with pytest.raises(TemplateProblem, match="random"):
        render("{{ [1, 2] | random }}")


def test_whitespace_is_collapsed() -> None:
    assert render("  A   shot\n\n of {{ who }}.  ", {"who": "Mara"}) == "A shot of Mara."


def test_memo_does_not_confuse_templates_that_include_others(tmp_path: Path) -> None:
    (tmp_path / "outer.j2").write_text("Outer {% include 'inner.j2' %}")
    (tmp_path / "inner.j2").write_text("{{ who }}")
    renderer = PromptRenderer(tmp_path)
    spec = PromptSpec((), template="outer.j2")
    assert renderer.render(spec, {"who": "Mara"}) == "Outer Mara"
    assert renderer.render(spec, {"who": "Jun"}) == "Outer Jun"


def test_memo_keys_on_the_variables_a_template_reads(tmp_path: Path) -> None:
    (tmp_path / "t.j2").write_text("{{ a }}")
    renderer = PromptRenderer(tmp_path)
    spec = PromptSpec((), template="t.j2")
    assert renderer.render(spec, {"a": "one", "b": 1}) == "one"
    assert renderer.render(spec, {"a": "one", "b": 2}) == "one"
    assert renderer.render(spec, {"a": "two", "b": 2}) == "two"


def test_shipped_templates_render_with_their_documented_variables() -> None:
    renderer = PromptRenderer(None)
    character = {"name": "mara", "description": "Mara", "vars": {}}
    shot = renderer.render(
        PromptSpec((), template="shot.j2"), {"action": "a slow turn", "character": character}
    )
    assert shot.startswith("Medium shot of Mara.") and "Action: a slow turn." in shot
    for name, needs in (
        ("continue.j2", {}),
        ("motion.j2", {}),
        ("establishing.j2", {"place": "a street"}),
        ("broll.j2", {"subject": "a key"}),
        ("negative/default.j2", {}),
        ("negative/continuity.j2", {}),
    ):
        assert renderer.render(PromptSpec((), template=name), {"character": None, **needs})
