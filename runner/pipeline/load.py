"""One entry point that loads a pipeline file: :func:`load_pipeline`.

YAML (safely, with lines) -> the pipeline JSON Schema -> frozen records. Every problem found
on the way is added to the caller's diagnostics, so that a user sees all of them at once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from runner.errors import Diagnostics, KeyPath, Location
from runner.ltx.registry import registry
from runner.pipeline import schema_check
from runner.pipeline.build import Builder
from runner.pipeline.confine import (
    Project,
    Refused,
    confine,
    find_project_root,
    looked_for,
    read_confined,
)
from runner.pipeline.records import Node, Pipeline, Preset, Ref
from runner.pipeline.review_file import (
    MAX_REVIEW_BYTES,
    Review,
    check_review,
    parse_review,
    review_path,
)
from runner.pipeline.sourcemap import SourceMap
from runner.pipeline.textfile import TextProblem, decode
from runner.pipeline.yaml_splice import DocumentMemo, read_pipeline_yaml
from runner.pipeline.yamlsrc import MAX_VALUES, load_yaml_bytes, read_yaml_file
from runner.resources import data_file

__all__ = [
    "builtin_presets",
    "check_preset_file",
    "find_project_root",
    "is_preset_file",
    "load_pipeline",
]

# Far above any real pipeline (5,000 nodes take about 0.7 MB) and far below what hurts.
MAX_PIPELINE_BYTES = 8 * 1024 * 1024
MAX_PRESET_FILE_BYTES = 1024 * 1024
MAX_IMPORTS = 32


def load_pipeline(
    path: Path,
    diags: Diagnostics,
    passed: schema_check.PassedNodes | None = None,
    memo: DocumentMemo | None = None,
) -> Pipeline | None:
    """Load ``path``. Returns None when the file is too broken to describe a pipeline.
    Nodes ``passed`` has seen pass the schema are not checked again; the file is read from
    ``memo``'s earlier one where it did not change (``runner.pipeline.yaml_splice``)."""
    # The path as given, not its symlink target: that is what decides the project.
    path = Path(os.path.abspath(path))
    project = Project.of_pipeline(path)
    data = _read(project, path.name, path.parent, MAX_PIPELINE_BYTES, Location(path), diags)
    if data is None:
        return None
    document, source = read_pipeline_yaml(data, path, diags, memo)
    if document is None:
        if not diags.has_errors:
            diags.error(
                "empty",
                "the pipeline file is empty",
                Location(path, 1),
                "start with: version: 1, name: ..., nodes: ...",
            )
        return None
    if not isinstance(document, dict):
        diags.error(
            "not-a-mapping",
            "a pipeline file must be a mapping of keys",
            source.locate(()),
            "start with: version: 1, name: ..., nodes: ...",
        )
        return None
    foreign: set[KeyPath] = set()
    broken_paths = schema_check.check(document, source, diags, foreign=foreign, passed=passed)
    for *where, key in sorted(foreign, key=str):  # reported: the node goes on without them
        parent = document
        for part in where:
            parent = parent[part]
        parent.pop(key, None)
    if not isinstance(document.get("nodes"), dict):
        return None  # already reported by the schema; nothing further to check
    broken = {(str(p[0]), str(p[1])) for p in broken_paths if len(p) >= 2}
    sections = {key: _section(document, key, broken) for key in _SECTIONS}
    build = Builder(source, diags)
    nodes: dict[str, Node] = {}
    for name, spec in sections["nodes"].items():
        node = build.node(name, spec, ("nodes", name))
        if node is None:
            broken.add(("nodes", name))
        else:
            nodes[name] = node
    presets = dict(builtin_presets())
    imported = _imported_presets(document.get("imports"), path, project, source, diags)
    for preset in imported + _own_presets(sections["presets"], source):
        if preset.name in presets:
            first = presets[preset.name]
            diags.error(
                "preset-duplicate",
                f"preset '{preset.name}' is already defined ({first.origin})",
                _preset_location(preset),
                "rename it, or start from the other one with `extends:`",
            )
            continue
        presets[preset.name] = preset
    motions: dict[str, Ref] = {}
    for name, spec in sections["motions"].items():
        ref = build.motion(spec, ("motions", name))
        if ref is not None:
            motions[name] = ref
    templates = _templates_dir(document.get("templates"), path, project, source, diags)
    defaults = document.get("defaults")
    review = _review(path, project, diags)
    takes = {name: len(node.takes) for name, node in nodes.items()}
    known = set(nodes) | {name for section, name in broken if section == "nodes"}
    check_review(review, takes, known, diags)
    return Pipeline(
        path=path,
        project=project,
        name=str(document.get("name", path.stem)),
        model=_model(document),
        source=source,
        description=str(document.get("description", "")),
        vars=_mapping(document.get("vars")),
        defaults=build.defaults(
            defaults
            if isinstance(defaults, dict) and not _has_error(broken_paths, "defaults")
            else {},
            ("defaults",),
        ),
        presets=presets,
        characters={
            name: build.character(name, spec, ("characters", name))
            for name, spec in sections["characters"].items()
        },
        motions=motions,
        nodes=nodes,
        outputs={k: v for k, v in sections["outputs"].items() if isinstance(v, str)},
        templates_dir=templates,
        review=review,
        broken=frozenset(broken),
    )


def _review(path: Path, project: Project, diags: Diagnostics) -> Review:
    """The review file beside the pipeline (picks and verdicts), or an empty one. It comes
    with the pipeline (a pull request may change it), so it obeys the same rules."""
    where = review_path(path)
    if not where.exists() and not where.is_symlink():
        looked_for(where)
        return Review(where)
    data = _read(project, where.name, path.parent, MAX_REVIEW_BYTES, Location(where), diags)
    if data is None:
        return Review(where)
    try:
        text = decode(data)
    except TextProblem as problem:
        diags.error("review-text", problem.message, Location(where, problem.line), problem.hint)
        return Review(where)
    return parse_review(text, where, diags)


_SECTIONS = ("nodes", "characters", "motions", "presets", "outputs")


def _section(document: Mapping[str, Any], key: str, broken: set[tuple[str, str]]) -> dict[str, Any]:
    """The well-formed entries of a top-level mapping; the others are marked broken."""
    value = document.get(key)
    if not isinstance(value, dict):
        return {}
    good = {}
    for name, spec in value.items():
        if (key, name) in broken or (key != "outputs" and not isinstance(spec, dict | str)):
            broken.add((key, name))
        else:
            good[name] = spec
    return good


def _has_error(paths: set[KeyPath], key: str) -> bool:
    return any(p and p[0] == key for p in paths)


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def _model(document: Mapping[str, Any]) -> str:
    model = document.get("model")
    return (
        model
        if isinstance(model, str) and model in registry().families
        else (registry().default_family)
    )


def _own_presets(presets: Mapping[str, Any], source: SourceMap) -> list[Preset]:
    return [
        _preset(name, spec, str(source.file), source, ("presets", name))
        for name, spec in presets.items()
        if isinstance(spec, Mapping)
    ]


def _preset(
    name: str, spec: Mapping[str, Any], origin: str, source: SourceMap | None, path: KeyPath
) -> Preset:
    params = {k: v for k, v in spec.items() if k not in ("extends", "description")}
    return Preset(
        name, params, spec.get("extends"), spec.get("description", ""), origin, source, path
    )


def _preset_location(preset: Preset) -> Location:
    if preset.source is None:
        return Location(key_path=preset.key_path)
    return preset.source.locate(preset.key_path, key=True)


def _read(
    project: Project,
    written: str | Path,
    base: Path,
    max_bytes: int,
    where: Location,
    diags: Diagnostics,
) -> bytes | None:
    """The bytes of a file the pipeline names, if the confinement rule allows reading it."""
    try:
        real = confine(project, written, base, max_bytes=max_bytes)
        if not real.exists():
            diags.error(
                "file-missing",
                f"no such file: {written}",
                where,
                "check the path; relative paths start at the pipeline's directory",
            )
            return None
        return read_confined(real, written, max_bytes)
    except Refused as refused:
        diags.error(refused.code, refused.message, where, refused.hint)
        return None


def _templates_dir(
    written: Any, path: Path, project: Project, source: SourceMap, diags: Diagnostics
) -> Path | None:
    """The pipeline's own template directory (``templates:``), if the rule allows it."""
    if not isinstance(written, str):
        return None
    try:
        confine(project, written, path.parent, expect="dir")
    except Refused as refused:
        diags.error(refused.code, refused.message, source.locate(("templates",)), refused.hint)
        return None
    return Path(os.path.abspath(path.parent / written))


def _imported_presets(
    imports: Any, path: Path, project: Project, pipeline: SourceMap, diags: Diagnostics
) -> list[Preset]:
    found: list[Preset] = []
    files = [(i, f) for i, f in enumerate(imports if isinstance(imports, list) else [])]
    if len(files) > MAX_IMPORTS:
        diags.error(
            "imports",
            f"{len(files)} preset files imported (at most {MAX_IMPORTS})",
            pipeline.locate(("imports",)),
            "gather the presets into fewer files",
        )
        return found
    # The pipeline and its imports share one bound on their values.
    values_left = MAX_VALUES - pipeline.values
    seen: dict[Path, int] = {}
    for index, relative in files:
        if not isinstance(relative, str):
            continue
        file = Path(os.path.abspath(path.parent / relative))
        where = pipeline.locate(("imports", index))
        if file in seen:
            diags.error(
                "imports",
                f"{relative} is imported twice (first as imports[{seen[file]}])",
                where,
                "import each preset file once",
            )
            continue
        seen[file] = index
        raw = _read(project, relative, path.parent, MAX_PRESET_FILE_BYTES, where, diags)
        if raw is None:
            continue
        presets, used = _preset_file(raw, file, relative, diags, max(values_left, 0))
        values_left -= used
        found += presets
    return found


def _preset_file(
    raw: bytes, file: Path, relative: str, diags: Diagnostics, max_values: int = MAX_VALUES
) -> tuple[list[Preset], int]:
    """The presets of a preset file (``presets:`` and nothing else, each preset checked
    against the schema), and how many YAML values it used."""
    reported = len(diags.items)
    data, source = load_yaml_bytes(raw, file, diags, max_values=max_values)
    if data is None and len(diags.items) > reported:
        return [], source.values
    if not isinstance(data, dict) or not isinstance(data.get("presets"), dict):
        diags.error(
            "preset-file",
            f"{relative} has no `presets:` mapping",
            source.locate(()) if data is not None else Location(file),
            "a preset file looks like: presets: {my-look: {resolution: 480p}}",
        )
        return [], source.values
    for key in sorted(set(data) - {"presets"}):
        diags.error(
            "preset-file",
            f"unknown key '{key}' in a preset file",
            source.locate((key,), key=True),
            "a preset file holds only `presets:`",
        )
    found = []
    for name, spec in data["presets"].items():
        broken = schema_check.check(
            spec, source, diags, definition="Preset", base=("presets", name)
        )
        if not broken and isinstance(spec, Mapping):
            found.append(_preset(name, spec, relative, source, ("presets", name)))
    return found, source.values


def check_preset_file(path: Path, diags: Diagnostics) -> int:
    """Check a preset file on its own (``validate`` of a file that a pipeline imports):
    YAML, its schema (``schemas/presets.schema.json``), and that what each preset extends
    is a built-in preset or one of the file's own. The number of presets."""
    path = Path(os.path.abspath(path))
    project = Project.of_pipeline(path)
    raw = _read(project, path.name, path.parent, MAX_PRESET_FILE_BYTES, Location(path), diags)
    if raw is None:
        return 0
    presets, _ = _preset_file(raw, path, path.name, diags)
    known = set(builtin_presets()) | {preset.name for preset in presets}
    for preset in presets:
        if preset.extends is not None and preset.extends not in known:
            diags.warning(
                "preset-extends",
                f"preset '{preset.name}' extends '{preset.extends}', which is neither "
                "built in nor in this file",
                _preset_location(preset),
                "fine if every pipeline importing this file defines or imports it",
            )
    return len(presets)


def is_preset_file(document: Any) -> bool:
    """Whether a YAML document is a preset file rather than a pipeline."""
    return isinstance(document, dict) and "presets" in document and "nodes" not in document


@cache
def builtin_presets() -> dict[str, Preset]:
    """The presets that ship with shotgraph (runner/data/presets.yaml)."""
    diags = Diagnostics()
    data, source = read_yaml_file(data_file("presets.yaml"), diags)
    diags.raise_if_errors()
    return {
        name: _preset(name, spec, "built-in", source, ("presets", name))
        for name, spec in data["presets"].items()
    }
