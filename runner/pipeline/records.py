"""The pipeline as frozen, typed records, built in one place (runner/pipeline/build.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from runner.errors import KeyPath
from runner.frame_at import FrameAt
from runner.pipeline.confine import Project
from runner.pipeline.review_file import Review
from runner.pipeline.sourcemap import SourceMap

NodeKind = Literal["t2v", "i2v", "extend", "multicondition", "v2v", "retake", "frame", "stitch"]
MediaType = Literal["image", "video"]
GENERATION_KINDS: frozenset[str] = frozenset(
    {"t2v", "i2v", "extend", "multicondition", "v2v", "retake"}
)


def a(noun: str) -> str:
    """The noun with its indefinite article: "an image", "a video"."""
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


def output_type(kind: str) -> MediaType:
    """What a node of ``kind`` produces."""
    return "image" if kind == "frame" else "video"


@dataclass(frozen=True, slots=True)
class NodeRef:
    """Another node's output."""

    node: str


@dataclass(frozen=True, slots=True)
class KeyframeRef:
    """A character's canonical keyframe, ``character.pose``."""

    character: str
    pose: str


@dataclass(frozen=True, slots=True)
class MotionRef:
    """A clip of the pipeline's motion library."""

    name: str


@dataclass(frozen=True, slots=True)
class FileRef:
    """A local file, as written (relative to the pipeline file)."""

    path: str


@dataclass(frozen=True, slots=True)
class UrlRef:
    """A remote file. Keyed by its URL: shotgraph never fetches it to hash it."""

    url: str


Ref = NodeRef | KeyframeRef | MotionRef | FileRef | UrlRef


@dataclass(frozen=True, slots=True)
class Conditioning:
    """A media input of a node, with its fal conditioning options and where it was written."""

    ref: Ref
    expects: MediaType
    key_path: KeyPath
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PromptSpec:
    """Literal text, a template file, or an inline template, with variables."""

    key_path: KeyPath
    text: str | None = None
    template: str | None = None
    inline: str | None = None
    vars: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Lora:
    """A LoRA adapter. ``role`` is shotgraph's own (for lint); it is not sent to fal."""

    path: str
    scale: float | None = None
    weight_name: str | None = None
    role: str | None = None

    def request(self) -> dict[str, Any]:
        body: dict[str, Any] = {"path": self.path}
        if self.weight_name is not None:
            body["weight_name"] = self.weight_name
        if self.scale is not None:
            body["scale"] = self.scale
        return body


@dataclass(frozen=True, slots=True)
class Take:
    """One take of a node: what it changes (a seed, a prompt, fal parameters); the rest is
    the node's. ``key_path`` is where it was written (``nodes.x.takes.1``)."""

    key_path: KeyPath
    seed: int | None = None
    prompt: PromptSpec | None = None
    negative_prompt: PromptSpec | None = None
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Node:
    """One node of the graph: a generation shot or a local media step."""

    name: str
    kind: NodeKind
    key_path: KeyPath
    description: str = ""
    model: str | None = None
    preset: str | None = None
    prompt: PromptSpec | None = None
    negative_prompt: PromptSpec | None = None
    seed: int | None = None
    character: str | None = None
    loras: tuple[Lora, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    inputs: tuple[Conditioning, ...] = ()
    at: FrameAt | None = None
    takes: tuple[Take, ...] = ()  # empty: one render, as always
    gate: bool = False  # dependents wait until its current output is approved

    @property
    def is_generation(self) -> bool:
        return self.kind in GENERATION_KINDS


@dataclass(frozen=True, slots=True)
class Character:
    """A character with canonical keyframes, LoRAs and template variables."""

    name: str
    description: str = ""
    keyframes: Mapping[str, Ref] = field(default_factory=dict)
    loras: tuple[Lora, ...] = ()
    vars: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Preset:
    """Named fal parameters; ``origin`` says where it was defined (for messages)."""

    name: str
    params: Mapping[str, Any]
    extends: str | None = None
    description: str = ""
    origin: str = "built-in"
    source: SourceMap | None = None
    key_path: KeyPath = ()


@dataclass(frozen=True, slots=True)
class Defaults:
    """Pipeline-wide settings of generation nodes."""

    preset: str | None = None
    negative_prompt: PromptSpec | None = None
    loras: tuple[Lora, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Pipeline:
    """A loaded, structurally valid pipeline file."""

    path: Path  # absolute, as given: a symlink is not followed
    project: Project
    name: str
    model: str
    source: SourceMap
    description: str = ""
    vars: Mapping[str, Any] = field(default_factory=dict)
    defaults: Defaults = field(default_factory=Defaults)
    presets: Mapping[str, Preset] = field(default_factory=dict)
    characters: Mapping[str, Character] = field(default_factory=dict)
    motions: Mapping[str, Ref] = field(default_factory=dict)
    nodes: Mapping[str, Node] = field(default_factory=dict)
    outputs: Mapping[str, str] = field(default_factory=dict)
    templates_dir: Path | None = None
    review: Review = field(default_factory=Review)  # picks and verdicts (review_file.py)
    # (section, name) of entries too malformed to build, e.g. ("nodes", "intro"); their errors
    # are already reported, and references to them are not reported again.
    broken: frozenset[tuple[str, str]] = frozenset()

    @property
    def project_root(self) -> Path:
        """The project directory as given (see :mod:`runner.pipeline.confine`)."""
        return self.project.root

    @property
    def base_dir(self) -> Path:
        """Relative paths in the pipeline resolve against its own directory."""
        return self.path.parent
