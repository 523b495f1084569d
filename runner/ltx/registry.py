"""The LTX endpoint registry: model families, the endpoint of each node kind, their schemas.

Families and prices are data (``runner/data/families.yaml``); the request schema of each
endpoint is derived from fal's OpenAPI (``schemas/endpoints/``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import yaml

from runner.errors import ShotgraphError
from runner.ltx.schema import ObjectSchema, input_schema
from runner.resources import data_file

GENERATION_KINDS = ("t2v", "i2v", "extend", "multicondition")

# Parameters of other fal models that LTX does not take (production guide, "Do NOT send"),
# with what LTX uses instead. They are errors on every endpoint whose schema lacks them.
FORBIDDEN_PARAMS: Mapping[str, str] = {
    "guidance_scale": "LTX 13B does not take a guidance scale; steer with the prompt and the "
    "two-pass steps (first_pass_num_inference_steps, second_pass_num_inference_steps)",
    "guide_scale": "guide_scale is a WAN 2.1 parameter; LTX uses the two-pass steps "
    "first_pass_num_inference_steps and second_pass_num_inference_steps instead",
    "strength": "strength belongs to image-to-image models; on LTX, set the strength of a "
    "conditioning input instead (video.strength on extend, images[].strength / "
    "videos[].strength on multicondition)",
    "image_size": "LTX takes resolution (480p, 720p) and aspect_ratio (16:9, 9:16, 1:1) instead",
    "num_inference_steps": "LTX 13B uses first_pass_num_inference_steps and "
    "second_pass_num_inference_steps instead",
}


@dataclass(frozen=True)
class Price:
    """How fal charges for an endpoint."""

    basis: str  # "per_video" | "per_second"
    usd: float | None
    confirmed: bool
    source: str
    billed_fps: int | None = None
    detail_pass_multiplier: float = 1.0


@dataclass(frozen=True)
class Endpoint:
    """One fal endpoint: its id, what it renders, its request schema and its price."""

    id: str
    family: str
    kind: str
    price: Price
    assumed_output: Mapping[str, int] | None = None

    @property
    def schema(self) -> ObjectSchema:
        return input_schema(self.id)

    @property
    def url_path(self) -> str:
        return self.id


@dataclass(frozen=True)
class Family:
    """A model family and the endpoint it uses for each node kind."""

    name: str
    title: str
    endpoints: Mapping[str, str]
    long_clip_frames: int
    price: Mapping[str, Any]
    assumed_output: Mapping[str, int] | None


class Registry:
    """Every family shotgraph knows, loaded once from the data file."""

    def __init__(self, families: Mapping[str, Family], default_family: str) -> None:
        self.families = families
        self.default_family = default_family

    def family(self, name: str) -> Family:
        try:
            return self.families[name]
        except KeyError:
            known = ", ".join(sorted(self.families))
            raise ShotgraphError(
                f"unknown model family '{name}'", hint=f"known families: {known}"
            ) from None

    def endpoint(self, family_name: str, kind: str) -> Endpoint:
        """The endpoint ``family_name`` uses for ``kind``; a kind the family lacks is an error."""
        return _endpoint(self, family_name, kind)

    def endpoints(self) -> list[Endpoint]:
        return [
            self.endpoint(name, kind)
            for name, fam in sorted(self.families.items())
            for kind in fam.endpoints
        ]

    def endpoint_by_id(self, endpoint_id: str) -> Endpoint | None:
        for fam in self.families.values():
            for kind, eid in fam.endpoints.items():
                if eid == endpoint_id:
                    return self.endpoint(fam.name, kind)
        return None

    def families_with(self, kind: str) -> list[str]:
        return sorted(name for name, fam in self.families.items() if kind in fam.endpoints)


@cache
def _endpoint(registry: Registry, family_name: str, kind: str) -> Endpoint:
    fam = registry.family(family_name)
    if kind not in fam.endpoints:
        have = ", ".join(fam.endpoints)
        others = ", ".join(registry.families_with(kind))
        raise ShotgraphError(
            f"model family '{family_name}' has no {kind} endpoint (it has: {have})",
            hint=f"use a family that has one ({others}), or set `model:` on this node",
        )
    spec = fam.price
    confirmed = bool(spec.get("confirmed")) or kind in spec.get("confirmed_for", [])
    price = Price(
        basis=str(spec["basis"]),
        usd=None if spec.get("usd") is None else float(spec["usd"]),
        confirmed=confirmed,
        source=str(spec.get("source", "")),
        billed_fps=spec.get("billed_fps"),
        detail_pass_multiplier=float(spec.get("detail_pass_multiplier", 1)),
    )
    return Endpoint(fam.endpoints[kind], family_name, kind, price, fam.assumed_output)


@cache
def registry() -> Registry:
    """The registry of ``runner/data/families.yaml``."""
    raw = yaml.safe_load(data_file("families.yaml").read_text())
    families = {
        name: Family(
            name=name,
            title=spec["title"],
            endpoints=dict(spec["endpoints"]),
            long_clip_frames=int(spec["long_clip_frames"]),
            price=dict(spec["price"]),
            assumed_output=spec.get("assumed_output"),
        )
        for name, spec in raw["families"].items()
    }
    return Registry(families, raw["default_family"])
