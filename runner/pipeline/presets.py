"""Layering of fal parameters: fal's defaults < preset < pipeline defaults < node.

Presets and pipeline defaults are portable across model families: a parameter the node's
endpoint does not take is left out (and, for a preset the user wrote, a lint warning says so).
Parameters set on a node must be ones its endpoint takes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from runner.errors import Diagnostics, KeyPath, Location
from runner.pipeline.records import Pipeline, Preset
from runner.pipeline.sourcemap import SourceMap


@dataclass(frozen=True, slots=True)
class Setting:
    """A parameter value and the layer that set it (for messages and ``plan -v``).

    Where it was written is looked up only when a message needs it."""

    value: Any
    layer: str  # "preset:<name>", "defaults", "node"
    source: SourceMap | None
    key_path: KeyPath

    @property
    def location(self) -> Location:
        if self.source is None:
            return Location(key_path=self.key_path)
        return self.source.locate(self.key_path)


class PresetResolver:
    """Flattens ``extends`` chains once per preset, reporting unknown names and cycles."""

    def __init__(self, pipeline: Pipeline, diags: Diagnostics) -> None:
        self.pipeline = pipeline
        self.diags = diags
        self._flat: dict[str, dict[str, Setting] | None] = {}

    def settings(self, name: str, used_at: Callable[[], Location]) -> dict[str, Setting] | None:
        """The parameters of preset ``name`` with everything it extends, or None if broken
        (reported where ``used_at()`` says: looked up only then, once per preset)."""
        if name not in self._flat:
            self._flat[name] = self._resolve(name, used_at(), ())
        return self._flat[name]

    def _resolve(
        self, name: str, used_at: Location, chain: tuple[str, ...]
    ) -> dict[str, Setting] | None:
        preset = self.pipeline.presets.get(name)
        if preset is None:
            self._unknown(name, used_at)
            return None
        if name in chain:
            cycle = " -> ".join((*chain[chain.index(name) :], name))
            self.diags.error(
                "preset-cycle",
                f"presets extend each other in a cycle: {cycle}",
                _where(preset, "extends"),
                "remove one of the `extends:`",
            )
            return None
        base: dict[str, Setting] = {}
        if preset.extends is not None:
            parent = self._resolve(preset.extends, _where(preset, "extends"), (*chain, name))
            if parent is None:
                return None
            base = dict(parent)
        for key, value in preset.params.items():
            base[key] = Setting(value, f"preset:{name}", preset.source, (*preset.key_path, key))
        return base

    def _unknown(self, name: str, used_at: Location) -> None:
        known = ", ".join(sorted(self.pipeline.presets))
        self.diags.error(
            "preset-unknown", f"no preset named '{name}'", used_at, f"known presets: {known}"
        )


def _where(preset: Preset, key: str) -> Location:
    if preset.source is None:
        return Location(key_path=(*preset.key_path, key))
    return preset.source.locate((*preset.key_path, key))


def layer(
    preset: Mapping[str, Setting] | None,
    defaults: Mapping[str, Setting],
    node: Mapping[str, Setting],
) -> dict[str, Setting]:
    """The parameters of a node, each from the highest layer that sets it."""
    merged: dict[str, Setting] = dict(preset or {})
    merged.update(defaults)
    merged.update(node)
    return merged
