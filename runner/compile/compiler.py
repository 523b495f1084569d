"""Compilation: every node of a loaded pipeline to a :class:`~runner.compile.steps.Step`.

Runs in topological order so that a node's cache key can include the keys of the nodes it
reads. A node that cannot compile is reported and its descendants are skipped quietly (their
problem is upstream).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from runner.compile import request
from runner.compile.keys import generation_key, keyed_body, media_key
from runner.compile.prompting import Prompts
from runner.compile.ranges import frame_in_range, section_in_range
from runner.compile.reuse import Reuse, with_settings
from runner.compile.sources import MediaSource, SourceResolver, Upstream
from runner.compile.steps import Compiled, Slot, Step
from runner.compile.takes import Variant, base_seed, take_checks, variants
from runner.errors import Diagnostics, KeyPath, ShotgraphError
from runner.hashing import Hasher, sha256_file
from runner.ltx.clip import Timing, timing
from runner.ltx.pricing import estimate
from runner.ltx.registry import registry
from runner.pipeline.graph import build_graph
from runner.pipeline.presets import PresetResolver, Setting, layer
from runner.pipeline.records import (
    Character,
    KeyframeRef,
    Lora,
    Node,
    NodeRef,
    Pipeline,
)


class Compiler:
    """Compiles one pipeline; problems are added to ``diags``."""

    def __init__(
        self,
        pipeline: Pipeline,
        diags: Diagnostics,
        backend: str,
        hash_file: Hasher = sha256_file,
        reuse: Reuse | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.diags = diags
        self.backend = backend
        self.presets = PresetResolver(pipeline, diags)
        self.sources = SourceResolver(pipeline, diags, hash_file)
        self.prompts = Prompts(pipeline, diags)
        self.steps: dict[str, Step] = {}
        self.reuse = reuse
        if reuse is not None:
            reuse.start(pipeline, backend)
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
            reused = self._reused(node)
            if reused is not None:
                self.steps[name] = reused
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

    def _reused(self, node: Node) -> Step | None:
        """The earlier step of a node nothing of which changed, with where each parameter
        came from (a memo keeps steps without it; lint and ``plan -v`` read it)."""
        earlier = self.reuse.step(node) if self.reuse is not None else None
        if earlier is None or earlier.endpoint is None:
            return earlier
        settings = self._settings(node, {})
        if settings is None:
            return None
        assert self.reuse is not None
        self.reuse.taken.add(node.name)  # lint's findings of it are the earlier ones too
        return with_settings(earlier, settings)

    def _sources(self, node: Node) -> list[MediaSource] | None:
        sources = [self.sources.resolve(c) for c in node.inputs]
        if any(s is None for s in sources):
            return None
        return [s for s in sources if s is not None]

    def _media(self, node: Node, sources: list[MediaSource]) -> Step | None:
        if node.at is not None and not frame_in_range(
            node, sources[0], self.steps, self.pipeline, self.diags
        ):
            return None
        deps = tuple(s.node for s in sources if isinstance(s, Upstream))
        key = media_key(node.kind, node.at, sources, {dep: self.steps[dep].key for dep in deps})
        slots = tuple(Slot(("inputs", i), source) for i, source in enumerate(sources))
        character = self._upstream_character(sources)
        # A frame is as large as its clip: an image-to-video of it at `video_size: auto`
        # can then be priced exactly.
        clip = self._source_timing(sources) if node.kind == "frame" else None
        size = clip.size if clip is not None else None
        shape = Timing(None, None, width=size[0], height=size[1]) if size else None
        return Step(
            node.name, node.kind, deps, key, slots, character=character, at=node.at, timing=shape
        )

    def _source_timing(self, sources: list[MediaSource]) -> Timing | None:
        """The shape of a node's first input, when it is another node's output of known
        shape (what `video_size: auto`, extend and retake follow)."""
        if not sources or not isinstance(sources[0], Upstream):
            return None
        return self.steps[sources[0].node].timing

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
        if not self._takes_differ(node, made):
            return
        picked = self.pipeline.review.picks.get(node.name, 1)
        if len(made) == len(node.takes) and picked in made:
            chosen = made[picked]
            self.steps[node.name] = replace(
                chosen, name=node.name, take=picked, takes=len(made), take_of=None, gate=node.gate
            )

    def _takes_differ(self, node: Node, made: Mapping[int, Step]) -> bool:
        """Two takes that make the same request would be one render paid for once and shown
        twice: on an endpoint that takes no seed (LTX-2 Pro, Fast, retake) takes must differ
        by what they change."""
        first: dict[str, int] = {}
        for take, step in made.items():
            same = first.setdefault(step.key, take)
            if same != take:
                assert step.endpoint is not None
                hint = (
                    "they have the same seed: give each take its own seed, prompt or parameters"
                    if step.endpoint.seeded
                    else f"{step.endpoint.id} takes no seed, so seeds cannot tell takes apart: "
                    "give each take its own prompt or parameters"
                )
                self.diags.error(
                    "takes-same-request",
                    f"takes {same} and {take} of '{node.name}' are the same request",
                    self.pipeline.source.locate((*node.key_path, "takes"), key=True),
                    hint,
                )
                return False
        return True

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
        if endpoint.schema.field("negative_prompt") is None:
            # LTX-2 Pro, Fast and retake take none: the defaults' is left out (lint says so);
            # one written on the node is a mistake.
            if node.negative_prompt is not None:
                self.diags.error(
                    "param-unsupported",
                    f"{endpoint.id} takes no negative prompt",
                    self.pipeline.source.locate((*node.key_path, "negative_prompt"), key=True),
                    "say what the shot shows instead; ltx-2-19b takes a negative prompt",
                )
                return None
            negative_spec = None
        negative = self.prompts.render(negative_spec, context, node) if negative_spec else None
        if prompt is None or (negative_spec is not None and negative is None):
            return None
        seed = variant.seed if variant else base_seed(node)
        if not endpoint.seeded and node.seed is not None:
            self.diags.error(
                "seed-unsupported",
                f"{endpoint.id} takes no seed: fal picks one, and a re-render differs",
                self.pipeline.source.locate((*node.key_path, "seed"), key=True),
                "remove `seed:`; the lockfile and the store keep the take you render "
                "(ltx-2-19b takes a seed)",
            )
            return None
        loras = self._loras(node, character)
        if loras:
            # LTX-2 19B takes LoRAs on the `/lora` twin of each endpoint.
            endpoint = registry().endpoint(family, node.kind, lora=True)
        if loras and endpoint.schema.field("loras") is None:
            self.diags.error(
                "loras-unsupported",
                f"{endpoint.id} does not take LoRAs",
                self.pipeline.source.locate(node.key_path, key=True),
                "use a family that takes LoRAs (ltx-0.9.7-distilled, ltx-2-19b, ...)",
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
        if node.kind == "retake" and not section_in_range(
            node, body, sources[0], self.steps, self.pipeline, self.diags
        ):
            return None
        clip = timing(endpoint, body, self._source_timing(sources))
        pinned = "node" if node.seed is not None else "derived"
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
            seed=seed if endpoint.seeded else None,
            seed_pinned_by=pinned if endpoint.seeded else "",
            character=character.name if character else None,
            estimate=estimate(endpoint, body, clip),
            timing=clip,
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
            locate = self.pipeline.source.locate
            preset = self.presets.settings(preset_name, lambda: locate(where_path))
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
    pipeline: Pipeline,
    diags: Diagnostics,
    backend: str = "fal",
    hash_file: Hasher = sha256_file,
    reuse: Reuse | None = None,
) -> Compiled:
    """Compile ``pipeline`` for ``backend`` (part of every cache key); the steps of nodes
    that did not change since an earlier compile come from ``reuse``, when given."""
    return Compiler(pipeline, diags, backend, hash_file, reuse).run()
