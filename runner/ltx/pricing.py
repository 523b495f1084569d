"""What a request will cost, by fal's own formula for its endpoint.

Four bases (``runner/data/families.yaml`` holds the amounts and where fal publishes them):
a flat amount per video; per second of output (LTX-Video 0.9.8 bills frames at 24 fps; LTX-2
Pro and Fast by their ``resolution``; retake by the section it makes again); and per megapixel
of generated video (LTX-2 19B: width x height x frames, rounded up to a whole megapixel). An
:class:`Estimate` keeps the formula's inputs, so a plan can show how it was reached.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runner.ltx.clip import Timing, timing
from runner.ltx.registry import Endpoint

MEGAPIXEL = 1_000_000


@dataclass(frozen=True)
class Estimate:
    """An estimated price in USD; ``usd`` is None when fal's price is unknown. ``unit`` is
    what fal charges by, ``inputs`` the numbers the formula took, ``basis`` the formula in
    words. ``assumed`` when an input was assumed (the clip's size or length)."""

    usd: float | None
    confirmed: bool
    basis: str
    unit: str = "per video"
    inputs: Mapping[str, Any] = field(default_factory=dict)
    assumed: bool = False

    @property
    def label(self) -> str:
        if self.usd is None:
            return "unpriced"
        mark = "" if self.confirmed and not self.assumed else "~"
        cents = round(self.usd, 2) == round(self.usd, 6)
        return f"{mark}${self.usd:.2f}" if cents else f"{mark}${self.usd:.4f}"

    def as_json(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "formula": self.basis,
            "inputs": dict(self.inputs),
            "assumed_inputs": self.assumed,
        }


def estimate(endpoint: Endpoint, body: Mapping[str, Any], clip: Timing | None = None) -> Estimate:
    """The cost of one request to ``endpoint`` with ``body``; ``clip`` is what it renders
    (worked out from the body when not given)."""
    price = endpoint.price
    clip = clip if clip is not None else timing(endpoint, body)
    if price.basis == "per_megapixel":
        return _per_megapixel(endpoint, clip)
    if price.basis == "per_second":
        return _per_second(endpoint, body, clip)
    if price.usd is None:
        return Estimate(None, False, "unpriced")
    return Estimate(price.usd, price.confirmed, "per video", inputs={"usd_per_video": price.usd})


def _usd(amount: float) -> str:
    return f"${amount:g}"


def _per_second(endpoint: Endpoint, body: Mapping[str, Any], clip: Timing) -> Estimate:
    price = endpoint.price
    rate, where = price.usd, ""
    if price.usd_by_resolution is not None:
        resolution = str(body.get("resolution"))
        rate, where = price.usd_by_resolution.get(resolution), f" at {resolution}"
    if rate is None:
        return Estimate(None, False, "unpriced", unit="per second")
    inputs: dict[str, Any] = {"usd_per_second": rate}
    if price.seconds_field is not None:
        seconds = float(body.get(price.seconds_field) or 0)
        inputs[price.seconds_field] = body.get(price.seconds_field)
        basis = f"{seconds:g} s ({price.seconds_field}) x {_usd(rate)}/s"
        usd = rate * seconds
        assumed = False
    elif price.billed_fps is not None:
        frames = clip.num_frames or 0
        multiplier = price.detail_pass_multiplier if body.get("enable_detail_pass") else 1.0
        inputs |= {"num_frames": frames, "billed_fps": price.billed_fps}
        basis = f"{frames} frames / {price.billed_fps} fps x {_usd(rate)}/s"
        if multiplier != 1.0:
            inputs["detail_pass_multiplier"] = multiplier
            basis += f" x {multiplier:g} (detail pass)"
        usd = rate * frames / price.billed_fps * multiplier
        assumed = clip.assumed
    else:
        seconds = clip.seconds or 0.0
        inputs |= {"seconds": round(seconds, 6)}
        if where:
            inputs["resolution"] = body.get("resolution")
        basis = f"{seconds:g} s x {_usd(rate)}/s{where}"
        usd = rate * seconds
        assumed = clip.assumed
    return Estimate(round(usd, 6), price.confirmed, basis, "per second", inputs, assumed=assumed)


def _per_megapixel(endpoint: Endpoint, clip: Timing) -> Estimate:
    price = endpoint.price
    if price.usd is None or clip.size is None or not clip.num_frames:
        return Estimate(None, False, "unpriced", unit="per megapixel", assumed=True)
    width, height = clip.size
    frames = clip.num_frames
    megapixels = math.ceil(width * height * frames / MEGAPIXEL)
    inputs = {
        "width": width,
        "height": height,
        "num_frames": frames,
        "megapixels": megapixels,
        "usd_per_megapixel": price.usd,
    }
    basis = f"{megapixels} MP ({width}x{height}x{frames}) x {_usd(price.usd)}/MP"
    usd = round(price.usd * megapixels, 6)
    return Estimate(usd, price.confirmed, basis, "per megapixel", inputs, assumed=clip.assumed)
