"""Compilation: every node of a loaded pipeline to a :class:`~runner.compile.steps.Step`.

Runs in topological order so that a node's cache key can include the keys of the nodes it
reads. A node that cannot compile is reported and its descendants are skipped quietly (their
problem is upstream).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from runner.compile import request
from runner.compile.keys import generation_key, keyed_body, media_key
from runner.compile.prompting import Prompts
from runner.compile.sources import MediaSource, SourceResolver, Upstream
from runner.compile.steps import Slot, Step
from runner.compile.takes import Variant, base_seed, take_checks, variants
from runner.errors import Diagnostics, KeyPath, ShotgraphError
from runner.hashing import Hasher, sha256_file
from runner.ltx.pricing import estimate, timing
from runner.ltx.registry import registry
from runner.pipeline.graph import Graph, build_graph
from runner.pipeline.presets import PresetResolver, Setting, layer
from runner.pipeline.records import (
    Character,
    KeyframeRef,
    Lora,
    Node,
    NodeRef,
    Pipeline,
)


@dataclass(frozen=True)
class Compiled:
    """A compiled pipeline: its graph and its steps in run order."""

    pipeline: Pipeline
    graph: Graph
    steps: Mapping[str, Step]
    backend: str


class Compiler:
    """Compiles one pipeline; problems are added to ``diags``."""

    def __init__(
        self, pipeline: Pipeline, diags: Diagnostics, backend: str, hash_file: Hasher = sha256_file
    ) -> None:
        self.pipeline = pipeline
        self.diags = diags
        self.backend = backend
        self.presets = PresetResolver(pipeline, diags)
        self.sources = SourceResolver(pipeline, diags, hash_file)
        self.prompts = Prompts(pipeline, diags)
        self.steps: dict[str, Step] = {}
        defaults = pipeline.defaults.params
        self._defaults = {
            key: Setting(value, "defaults", pipeline.source, ("defaults", key))
            for key, value in defaults.items()
        }

    def run(self) -> Compiled:
        graph = build_graph(self.pipeline, self.diags)
        for name in graph.order:
            node = self.pipeline.nodes[name]
            upstream = [c.ref.node for c in node.inputs if isinstance(c.ref, NodeRef)]
            if any(dep not in self.steps for dep in upstream):
                # A broken reference (reported) or a node upstream that failed; the node's
                # own template errors are still worth showing now rather than after a fix.
                self._check_prompts(node)
                continue
            sources = self._sources(node)
            if sources is None:
                self._check_prompts(node)
                continue
            if node.is_generation and node.takes:
                self._takes(node, sources)
                continue
            step = (
                self._generation(node, sources)
                if node.is_generation
                else self._media(node, sources)
            )
            if step is not None:
                self.steps[name] = step
        return Compiled(self.pipeline, graph, self.steps, self.backend)

    def _sources(self, node: Node) -> list[MediaSource] | None:
        sources = [self.sources.resolve(c) for c in node.inputs]
        if any(s is None for s in sources):
            return None
        return [s for s in sources if s is not None]

    def _media(self, node: Node, sources: list[MediaSource]) -> Step | None:
        if node.at is not None and not self._frame_in_range(node, sources[0]):
            return None
        deps = tuple(s.node for s in sources if isinstance(s, Upstream))
        key = media_key(node.kind, node.at, sources, {dep: self.steps[dep].key for dep in deps})
        slots = tuple(Slot(("inputs", i), source) for i, source in enumerate(sources))
        character = self._upstream_character(sources)
        return Step(node.name, node.kind, deps, key, slots, character=character, at=node.at)

    def _frame_in_range(self, node: Node, source: MediaSource) -> bool:
        """A frame past the end of a clip whose length the request fixes is an error now,
        not a failure at the end of a paid render."""
        at = node.at
        upstream = self.steps.get(source.node) if isinstance(source, Upstream) else None
        timing = upstream.timing if upstream is not None else None
        if at is None or timing is None or timing.assumed or not timing.num_frames:
            return True
        frames, rate = timing.num_frames, timing.frame_rate or 0.0
        if at.index is not None:
            ok = -frames <= at.index < frames
            length = f"{frames} frames (0 to {frames - 1}, or -1 to -{frames})"
        else:
            last = (frames - 1) / rate if rate else 0.0
            ok = at.seconds is not None and at.seconds <= last + 1e-9
            length = f"{frames} frames at {rate:g} fps (the last frame is at {last:.2f}s)"
        if not ok:
            assert isinstance(source, Upstream)
            self.diags.error(
                "frame-at-range",
                f"frame {at} is past the end of '{source.node}'",
                self.pipeline.source.locate((*node.key_path, "at")),
                f"'{source.node}' renders {length}",
            )
        return ok

    def _takes(self, node: Node, sources: list[MediaSource]) -> None:
        """A step per take, then the node's own: the picked take's, under the node's name
        (see :mod:`runner.compile.takes`)."""
        checks = [self._checked_params(checked) for checked in take_checks(node)]
        if not all(checks):
            self._check_prompts(node)
            return
        made = {}
        for variant in variants(node):
            step = self._generation(variant.node, sources, variant)
            if step is not None:
                self.steps[variant.step_name] = step
                made[variant.take] = step
        picked = self.pipeline.review.picks.get(node.name, 1)
        if len(made) == len(node.takes) and picked in made:
            chosen = made[picked]
            self.steps[node.name] = replace(
                chosen, name=node.name, take=picked, takes=len(made), take_of=None, gate=node.gate
            )

    def _checked_params(self, node: Node) -> bool:
        """The node's parameters are its endpoint's (an unknown family is reported later)."""
        family = node.model or self.pipeline.model
        try:
            endpoint = registry().endpoint(family, node.kind)
        except ShotgraphError:
            return True
        return request.check_node_params(node, endpoint, self.pipeline, self.diags)

    def _generation(
        self, node: Node, sources: list[MediaSource], variant: Variant | None = None
    ) -> Step | None:
        family = node.model or self.pipeline.model
        try:
            endpoint = registry().endpoint(family, node.kind)
        except ShotgraphError as exc:
            self.diags.error(
                "kind-unsupported",
                exc.message,
                self.pipeline.source.locate((*node.key_path, "kind")),
                exc.hint,
            )
            self._check_prompts(node)
            return None
        if variant is None and not request.check_node_params(
            node, endpoint, self.pipeline, self.diags
        ):
            self._check_prompts(node)
            return None
        settings = self._settings(node, variant.paths if variant else {})
        if settings is None:
            self._check_prompts(node)
            return None
        known, character = self._character(node, sources)
        if not known:
            return None
        context = self.prompts.context(node, character)
        prompt = self.prompts.render(node.prompt, context, node)
        negative_spec = node.negative_prompt or self.pipeline.defaults.negative_prompt
        negative = self.prompts.render(negative_spec, context, node) if negative_spec else None
        if prompt is None or (negative_spec is not None and negative is None):
            return None
        seed = variant.seed if variant else base_seed(node)
        loras = self._loras(node, character)
        if loras and endpoint.schema.field("loras") is None:
            self.diags.error(
                "loras-unsupported",
                f"{endpoint.id} does not take LoRAs",
                self.pipeline.source.locate(node.key_path, key=True),
                "use an LTX 13B family (ltx-0.9.7-distilled, ...) for LoRAs",
            )
            return None
        built = request.request_body(
            node,
            endpoint,
            settings,
            (prompt, negative),
            loras,
            seed,
            sources,
            self.pipeline,
            self.diags,
        )
        if built is None:
            return None
        body, slots = built
        upstream = {
            s.source.node: self.steps[s.source.node].key
            for s in slots
            if isinstance(s.source, Upstream)
        }
        key = generation_key(endpoint.id, keyed_body(body, slots, upstream), self.backend)
        return Step(
            name=variant.step_name if variant else node.name,
            kind=node.kind,
            deps=tuple(upstream),
            key=key,
            slots=slots,
            endpoint=endpoint,
            body=body,
            seed=seed,
            seed_pinned_by="node" if node.seed is not None else "derived",
            character=character.name if character else None,
            estimate=estimate(endpoint, body),
            timing=timing(endpoint, body),
            settings=settings,
            gate=node.gate and variant is None,
            take=variant.take if variant else None,
            take_of=node.name if variant else None,
        )

    def _settings(self, node: Node, paths: Mapping[str, KeyPath]) -> dict[str, Setting] | None:
        preset_name = node.preset or self.pipeline.defaults.preset
        preset: Mapping[str, Setting] | None = None
        if preset_name is not None:
            where_path = (*node.key_path, "preset") if node.preset else ("defaults", "preset")
            preset = self.presets.settings(preset_name, self.pipeline.source.locate(where_path))
            if preset is None:
                return None
        own = {
            key: Setting(value, "node", self.pipeline.source, paths.get(key, (*node.key_path, key)))
            for key, value in node.params.items()
        }
        return layer(preset, self._defaults, own)

    def _character(self, node: Node, sources: list[MediaSource]) -> tuple[bool, Character | None]:
        """The character a shot shows: named, or from a keyframe, or from the shot it continues.
        (False, None) when a named character does not exist (reported)."""
        characters = self.pipeline.characters
        if node.character is not None:
            found = characters.get(node.character)
            if found is None:
                if ("characters", node.character) not in self.pipeline.broken:
                    known = ", ".join(sorted(characters)) or "none defined"
                    self.diags.error(
                        "character-unknown",
                        f"no character '{node.character}'",
                        self.pipeline.source.locate((*node.key_path, "character")),
                        f"known characters: {known}",
                    )
                return False, None
            return True, found
        for conditioning in node.inputs:
            if isinstance(conditioning.ref, KeyframeRef):
                return True, characters.get(conditioning.ref.character)
        name = self._upstream_character(sources)
        return True, characters.get(name) if name else None

    def _check_prompts(self, node: Node) -> None:
        """Render the prompts of a node that cannot compile, for their errors only."""
        if not node.is_generation:
            return
        if node.character is not None and node.character not in self.pipeline.characters:
            return
        context = self.prompts.context(node, self._static_character(node, set()))
        self.prompts.render(node.prompt, context, node)
        negative = node.negative_prompt or self.pipeline.defaults.negative_prompt
        self.prompts.render(negative, context, node)

    def _static_character(self, node: Node, seen: set[str]) -> Character | None:
        """The character of :meth:`_character`, found from the pipeline alone."""
        characters = self.pipeline.characters
        if node.character is not None:
            return characters.get(node.character)
        seen.add(node.name)
        for conditioning in node.inputs:
            ref = conditioning.ref
            if isinstance(ref, KeyframeRef):
                return characters.get(ref.character)
            upstream = self.pipeline.nodes.get(ref.node) if isinstance(ref, NodeRef) else None
            if upstream is not None and upstream.name not in seen:
                found = self._static_character(upstream, seen)
                if found is not None:
                    return found
        return None

    def _upstream_character(self, sources: list[MediaSource]) -> str | None:
        for source in sources:
            if isinstance(source, Upstream) and self.steps[source.node].character:
                return self.steps[source.node].character
        return None

    def _loras(self, node: Node, character: Character | None) -> tuple[Lora, ...]:
        merged: dict[str, Lora] = {}
        layers = (self.pipeline.defaults.loras, character.loras if character else (), node.loras)
        for group in layers:
            for lora in group:
                merged.pop(lora.path, None)
                merged[lora.path] = lora
        return tuple(merged.values())


def compile_pipeline(
    pipeline: Pipeline, diags: Diagnostics, backend: str = "fal", hash_file: Hasher = sha256_file
) -> Compiled:
    """Compile ``pipeline`` for ``backend`` (part of every cache key)."""
    return Compiler(pipeline, diags, backend, hash_file).run()
