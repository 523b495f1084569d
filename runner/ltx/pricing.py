"""What a request will cost and how long the clip it makes will be."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runner.ltx.registry import Endpoint


@dataclass(frozen=True)
class Timing:
    """Length of a generated clip. ``assumed`` when the endpoint does not say (see the data)."""

    num_frames: int | None
    frame_rate: float | None
    assumed: bool = False

    @property
    def seconds(self) -> float | None:
        if not self.num_frames or not self.frame_rate:
            return None
        return self.num_frames / self.frame_rate


@dataclass(frozen=True)
class Estimate:
    """An estimated price in USD; ``usd`` is None when fal's price is unknown."""

    usd: float | None
    confirmed: bool
    basis: str

    @property
    def label(self) -> str:
        if self.usd is None:
            return "unpriced"
        mark = "" if self.confirmed else "~"
        cents = round(self.usd, 2) == round(self.usd, 6)
        return f"{mark}${self.usd:.2f}" if cents else f"{mark}${self.usd:.4f}"


def timing(endpoint: Endpoint, body: Mapping[str, Any]) -> Timing:
    frames, rate = body.get("num_frames"), body.get("frame_rate")
    if isinstance(frames, int) and isinstance(rate, int | float):
        return Timing(frames, float(rate))
    assumed = endpoint.assumed_output or {}
    return Timing(assumed.get("num_frames"), assumed.get("frame_rate"), assumed=True)


def estimate(endpoint: Endpoint, body: Mapping[str, Any]) -> Estimate:
    """The cost of one request to ``endpoint`` with ``body``."""
    price = endpoint.price
    if price.usd is None:
        return Estimate(None, False, price.source)
    if price.basis == "per_video":
        return Estimate(price.usd, price.confirmed, "per video")
    frames = timing(endpoint, body).num_frames or 0
    billed_fps = price.billed_fps or 24
    multiplier = price.detail_pass_multiplier if body.get("enable_detail_pass") else 1.0
    usd = round(price.usd * frames / billed_fps * multiplier, 6)
    basis = f"${price.usd}/s x {frames} frames / {billed_fps} fps"
    if multiplier != 1.0:
        basis += f" x {multiplier:g} (detail pass)"
    return Estimate(usd, price.confirmed, basis)
