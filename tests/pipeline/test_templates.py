"""The sandboxed template environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.pipeline.records import PromptSpec
from runner.pipeline.templates import PromptRenderer, TemplateProblem


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


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ("{{ lipsum() }}", "'lipsum' is undefined"),
        ("{{ [1, 2]|random }}", "No filter named 'random'"),
        ("{{ cycler(1, 2) }}", "cannot show a Cycler"),
        ("{{ joiner() }}", "cannot show a Joiner"),
        ("{{ 'a'.upper }}", "cannot show a builtin_function_or_method"),
        ("{{ [1, 2]|map('string')|string }}", "cannot show a generator"),
        ("{{ ['a', range]|join }}", "cannot show a function"),
        ("{{ 'x' ~ namespace() }}", "cannot show a Namespace"),
        ("{{ '{}'.format(dict.fromkeys) }}", "cannot show a builtin_function_or_method"),
    ],
)
def test_no_randomness_and_no_memory_addresses(template: str, fragment: str) -> None:
    with pytest.raises(TemplateProblem) as info:
        render(template)
    assert fragment in info.value.message


def test_deterministic_helpers_still_work() -> None:
    text = render(
        "{% set c = cycler('a', 'b') %}{% set j = joiner('/') %}{% set ns = namespace(n=0) %}"
        "{% for i in range(3) %}{{ j() }}{{ c.next() }}{% set ns.n = ns.n + i %}{% endfor %}"
        " {{ ns.n }} {{ dict(x=1)|tojson }} {{ ['b', 'a']|map('upper')|sort|join(',') }}"
    )
    assert text == 'a/b/a 3 {"x": 1} A,B'


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        (
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            "10,000 steps",
        ),
        ("{% macro f() %}{{ f() }}{{ f() }}{% endmacro %}{{ f() }}", "calls itself without end"),
        ("{{ ('a' * 10000000000)|length }}", "more than 100,000 characters"),
        ("{{ [0] * 10000000000 }}", "more than 100,000 characters"),
        ("{{ 2 ** 10000000000 }}", "a number of about"),
        ("{{ 'x'|center(10000000000) }}", "filters take numbers up to 100,000"),
        ("{{ 'x'.rjust(10000000000) }}", "more than 100,000 characters"),
        ("{{ '{:>{w}}'.format(1, w=10**9) }}", "takes its width from a value"),
        ("{{ ('{:>99999}' * 1000).format(*range(1000)) }}", "more than 100,000 characters"),
        ("{{ '{:.99999f}'.format(1.5) }}", "more than 100,000 characters"),
        ("{{ '%.99999f' % 1.5 }}", "more than 100,000 characters"),
        ("{{ '%*d' % (10**9, 1) }}", "pads to a width"),
        ("{{ ('a' * 90000)|replace('', 'bb') }}", "more than 100,000 characters"),
        ("{{ range(99999)|join('x' * 2) }}", "more than 100,000 characters"),
        ("{{ ([1]|batch(10**9, 'x'))|list }}", "filters take numbers up to 100,000"),
        ("{{ [[1], [2]]|sum(start=[]) }}", "|sum adds numbers"),
        ("{% set s = 'x' * 50000 %}{{ s ~ s ~ s }}", "more than 100,000 characters"),
        (
            "{% set s = 'x' * 60000 %}{% macro m() %}{{ s }}{{ s }}{% endmacro %}{{ m() }}",
            "more than 100,000 characters",
        ),
        ("{% for i in [1] %}" * 25 + "x" + "{% endfor %}" * 25, "nested too deeply"),
        ("{{ " + "(" * 500 + "1" + ")" * 500 + " }}", "nested too deeply"),
    ],
)
def test_templates_have_a_budget(template: str, fragment: str) -> None:
    with pytest.raises(TemplateProblem) as info:
        render(template)
    assert fragment in info.value.message
    assert info.value.hint


def test_a_budget_error_names_the_template_and_line(tmp_path: Path) -> None:
    (tmp_path / "outer.j2").write_text("A shot\n{% include 'inner.j2' %}")
    (tmp_path / "inner.j2").write_text("of\n\n{{ 'a' * 10**9 }}")
    with pytest.raises(TemplateProblem) as info:
        PromptRenderer(tmp_path).render(PromptSpec((), template="outer.j2"), {})
    assert (info.value.template, info.value.line) == ("inner.j2", 3)


def test_each_render_has_its_own_budget() -> None:
    renderer = PromptRenderer(None)
    loop = PromptSpec((), inline="{% for i in range(9000) %}{% endfor %}{{ n }}")
    for n in range(5):  # 45,000 steps in all, 9,000 per render
        assert renderer.render(loop, {"n": n}) == str(n)


def test_a_template_compiled_before_renders_and_fails_alike(tmp_path: Path) -> None:
    """A process keeps the code of the templates it compiled (runner.pipeline.sandbox): a
    second pipeline's renderer reusing it renders the same text and names the same line."""
    (tmp_path / "t.j2").write_text("A shot of\n{{ who }} {% if late %}{{ missing }}{% endif %}")
    spec = PromptSpec((), template="t.j2")
    for _ in range(2):
        assert PromptRenderer(tmp_path).render(spec, {"who": "Mara", "late": False}) == (
            "A shot of Mara"
        )
        with pytest.raises(TemplateProblem) as info:
            PromptRenderer(tmp_path).render(spec, {"who": "Mara", "late": True})
        assert (info.value.template, info.value.line) == ("t.j2", 2)


def test_constants_folded_while_compiling_spend_the_budget_every_time() -> None:
    # Jinja folds a filter of constants while compiling, through the budget: 200 steps
    # then, 9,900 more in the loop, over the 10,000 a render has. Code kept from the first
    # compile would skip the 200 and let the second render through.
    template = "{{ 'a'|upper }}" * 200 + "{% for i in range(9900) %}{% endfor %}"
    for _ in range(2):
        with pytest.raises(TemplateProblem, match="steps"):
            render(template)


def test_formats_are_checked_in_linear_time() -> None:
    # 20,000 colons after a brace took 11 s with a backtracking pattern (90,000 would take
    # minutes); now Python's own error comes at once.
    with pytest.raises(TemplateProblem, match=r"unmatched '\{'"):
        render("{{ ('{' ~ ':' * 90000).format(1) }}")
