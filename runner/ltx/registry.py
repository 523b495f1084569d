"""The LTX endpoint registry: model families, the endpoint of each node kind, their schemas.

Families and prices are data (``runner/data/families.yaml``); the request schema of each
endpoint is derived from fal's OpenAPI (``schemas/endpoints/``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from runner.errors import ShotgraphError
from runner.ltx.schema import ObjectSchema, input_schema
from runner.resources import data_file

GENERATION_KINDS = ("t2v", "i2v", "extend", "multicondition", "v2v", "retake")
# The "do not send" set of a family that names none (production guide, LTX 13B).
DEFAULT_FORBIDDEN = "ltx-13b"


@dataclass(frozen=True)
class Price:
    """How fal charges for an endpoint (``runner/data/families.yaml`` explains the bases)."""

    basis: str  # "per_video" | "per_second" | "per_megapixel"
    usd: float | None
    confirmed: bool
    source: str
    billed_fps: int | None = None
    detail_pass_multiplier: float = 1.0
    usd_by_resolution: Mapping[str, float] | None = field(default=None, hash=False)
    seconds_field: str | None = None


@dataclass(frozen=True)
class Deprecation:
    """fal marks an endpoint deprecated: what to use instead, and where fal says so."""

    replacement: str
    source: str


@dataclass(frozen=True)
class Endpoint:
    """One fal endpoint: its id, what it renders, its request schema and its price."""

    id: str
    family: str
    kind: str
    price: Price
    assumed_output: Mapping[str, int] | None = field(default=None, hash=False)
    # Parameters of other models this endpoint's family does not take, with what it uses.
    forbidden: Mapping[str, str] = field(default_factory=dict, hash=False)
    sound: bool = False
    lora: bool = False  # the `/lora` twin, chosen for a node with LoRAs

    @property
    def schema(self) -> ObjectSchema:
        return input_schema(self.id)

    @property
    def url_path(self) -> str:
        return self.id

    @property
    def seeded(self) -> bool:
        """Whether the request takes a seed (LTX-2 Pro, Fast and retake do not)."""
        return self.schema.field("seed") is not None


@dataclass(frozen=True)
class Family:
    """A model family and the endpoint it uses for each node kind."""

    name: str
    title: str
    endpoints: Mapping[str, str]
    price: Mapping[str, Any]
    assumed_output: Mapping[str, int] | None
    long_clip_frames: int | None = None
    long_clip_seconds: float | None = None
    lora_endpoints: Mapping[str, str] = field(default_factory=dict)
    kind_prices: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    forbidden: Mapping[str, str] = field(default_factory=dict)
    sound: bool = False


class Registry:
    """Every family shotgraph knows, loaded once from the data file."""

    def __init__(
        self,
        families: Mapping[str, Family],
        default_family: str,
        deprecated: Mapping[str, Deprecation] | None = None,
        forbidden: Mapping[str, str] | None = None,
    ) -> None:
        self.families = families
        self.default_family = default_family
        self.deprecated = deprecated or {}
        # The LTX 13B "do not send" set: what a parameter no family takes is told.
        self.forbidden = forbidden or {}

    def family(self, name: str) -> Family:
        try:
            return self.families[name]
        except KeyError:
            known = ", ".join(sorted(self.families))
            raise ShotgraphError(
                f"unknown model family '{name}'", hint=f"known families: {known}"
            ) from None

    def endpoint(self, family_name: str, kind: str, *, lora: bool = False) -> Endpoint:
        """The endpoint ``family_name`` uses for ``kind`` (its `/lora` twin when ``lora`` and
        the family has one); a kind the family lacks is an error."""
        return _endpoint(self, family_name, kind, lora)

    def endpoints(self) -> list[Endpoint]:
        """Every endpoint of every family, the `/lora` twins included."""
        found = []
        for name, fam in sorted(self.families.items()):
            found += [self.endpoint(name, kind) for kind in fam.endpoints]
            found += [self.endpoint(name, kind, lora=True) for kind in fam.lora_endpoints]
        return found

    def endpoint_by_id(self, endpoint_id: str) -> Endpoint | None:
        for fam in self.families.values():
            for lora, table in ((False, fam.endpoints), (True, fam.lora_endpoints)):
                for kind, eid in table.items():
                    if eid == endpoint_id:
                        return self.endpoint(fam.name, kind, lora=lora)
        return None

    def families_with(self, kind: str) -> list[str]:
        return sorted(name for name, fam in self.families.items() if kind in fam.endpoints)

    def families_with_loras(self, kind: str) -> list[str]:
        """The families whose ``kind`` node takes LoRAs: on its endpoint or its `/lora` twin."""
        return [
            name
            for name in self.families_with(kind)
            if self.endpoint(name, kind, lora=True).schema.field("loras") is not None
        ]

    def deprecation(self, endpoint_id: str) -> Deprecation | None:
        """What fal says to use instead of ``endpoint_id``, if fal marks it deprecated (an
        entry covers the endpoint itself and every path under it)."""
        for prefix, found in self.deprecated.items():
            if endpoint_id == prefix or endpoint_id.startswith(prefix + "/"):
                return found
        return None


@cache
def _endpoint(registry: Registry, family_name: str, kind: str, lora: bool) -> Endpoint:
    fam = registry.family(family_name)
    if kind not in fam.endpoints:
        have = ", ".join(fam.endpoints)
        others = ", ".join(registry.families_with(kind))
        raise ShotgraphError(
            f"model family '{family_name}' has no {kind} endpoint (it has: {have})",
            hint=f"use a family that has one ({others}), or set `model:` on this node",
        )
    spec = fam.kind_prices.get(kind, fam.price)
    confirmed = bool(spec.get("confirmed")) or kind in spec.get("confirmed_for", [])
    by_resolution = spec.get("usd_by_resolution")
    price = Price(
        basis=str(spec["basis"]),
        usd=None if spec.get("usd") is None else float(spec["usd"]),
        confirmed=confirmed,
        source=str(spec.get("source", "")),
        billed_fps=spec.get("billed_fps"),
        detail_pass_multiplier=float(spec.get("detail_pass_multiplier", 1)),
        usd_by_resolution=(
            {str(k): float(v) for k, v in by_resolution.items()} if by_resolution else None
        ),
        seconds_field=spec.get("seconds_field"),
    )
    twin = lora and kind in fam.lora_endpoints
    endpoint_id = fam.lora_endpoints[kind] if twin else fam.endpoints[kind]
    return Endpoint(
        endpoint_id,
        family_name,
        kind,
        price,
        fam.assumed_output,
        fam.forbidden,
        fam.sound,
        lora=twin,
    )


@cache
def registry() -> Registry:
    """The registry of ``runner/data/families.yaml``."""
    import yaml  # here: a plan read back from the compile memo may never need it

    # libyaml's loader: the same values as PyYAML's own (a test compares them), 10x faster.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    raw = yaml.load(data_file("families.yaml").read_text(), Loader=loader)
    forbidden_sets: Mapping[str, Mapping[str, str]] = raw["forbidden_params"]
    families = {
        name: Family(
            name=name,
            title=spec["title"],
            endpoints=dict(spec["endpoints"]),
            price=dict(spec["price"]),
            assumed_output=spec.get("assumed_output"),
            long_clip_frames=spec.get("long_clip_frames"),
            long_clip_seconds=spec.get("long_clip_seconds"),
            lora_endpoints=dict(spec.get("lora_endpoints", {})),
            kind_prices=dict(spec.get("kind_prices", {})),
            forbidden=dict(forbidden_sets[spec.get("forbidden_params", DEFAULT_FORBIDDEN)]),
            sound=bool(spec.get("sound", False)),
        )
        for name, spec in raw["families"].items()
    }
    deprecated = {
        prefix: Deprecation(str(entry["replacement"]), str(entry["source"]))
        for prefix, entry in raw.get("deprecated_endpoints", {}).items()
    }
    return Registry(families, raw["default_family"], deprecated, forbidden_sets[DEFAULT_FORBIDDEN])
