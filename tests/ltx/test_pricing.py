"""Prices by fal's own formulas, checked against the figures fal publishes, and the clip
shape each family's request makes (what the formulas and the emulator take)."""

from __future__ import annotations

from typing import Any

import pytest

from runner.ltx.clip import Timing, timing
from runner.ltx.pricing import estimate
from runner.ltx.registry import registry


def price(family: str, kind: str, body: dict[str, Any], source: Timing | None = None) -> Any:
    endpoint = registry().endpoint(family, kind)
    return estimate(endpoint, body, timing(endpoint, body, source))


HOSTED = {"duration": 6, "resolution": "1080p", "fps": 25, "aspect_ratio": "16:9"}
OPEN = {"num_frames": 121, "fps": 25, "video_size": {"width": 1280, "height": 720}}


def test_fals_published_figures() -> None:
    # fal's LTX-2 Pro guide: "A 6-second 1080p video costs $0.36 with the Pro model."
    pro = price("ltx-2-pro", "i2v", HOSTED)
    assert (pro.usd, pro.confirmed, pro.unit) == (0.36, True, "per second")
    assert pro.inputs == {"usd_per_second": 0.06, "seconds": 6.0, "resolution": "1080p"}
    # fal's 19B pages: 121 frames at 1280x720 is about 112 MP, "$0.2016".
    dev = price("ltx-2-19b", "i2v", OPEN)
    assert (dev.usd, dev.confirmed, dev.unit) == (0.2016, True, "per megapixel")
    assert dev.inputs["megapixels"] == 112 and dev.label == "$0.2016"
    # fal's distilled page: the same clip at $0.001 per megapixel is "$0.112".
    distilled = price("ltx-2-19b-distilled", "t2v", OPEN)
    assert distilled.usd == 0.112 and not distilled.confirmed  # a sibling's price
    assert distilled.label == "~$0.1120"


def test_per_second_by_resolution_and_duration() -> None:
    fast = price("ltx-2-fast", "t2v", {**HOSTED, "duration": 20})
    assert fast.usd == pytest.approx(20 * 0.04)
    assert price("ltx-2-pro", "t2v", {**HOSTED, "resolution": "2160p", "duration": 10}).usd == (
        pytest.approx(10 * 0.24)
    )
    # 50 fps renders twice the frames at the same price per second.
    assert price("ltx-2-pro", "t2v", {**HOSTED, "fps": 50}).usd == 0.36


def test_megapixels_are_rounded_up() -> None:
    exact = {"num_frames": 1, "fps": 25, "video_size": {"width": 1000, "height": 1000}}
    assert price("ltx-2-19b", "t2v", exact).inputs["megapixels"] == 1
    over = {**exact, "video_size": {"width": 1000, "height": 1001}}
    assert price("ltx-2-19b", "t2v", over).inputs["megapixels"] == 2


def test_retake_is_billed_by_its_section_and_flagged() -> None:
    retake = price("ltx-2-pro", "retake", {"duration": 2, "start_time": 1})
    assert (retake.usd, retake.confirmed) == (0.2, False)
    assert retake.inputs == {"usd_per_second": 0.1, "duration": 2}


def test_auto_size_follows_a_known_input_else_is_assumed() -> None:
    body = {**OPEN, "video_size": "auto"}
    known = Timing(150, 25.0, width=1920, height=1080)
    extend = price("ltx-2-19b", "extend", body, known)
    assert extend.inputs["megapixels"] == 251 and not extend.assumed  # 1920x1080x121
    guessed = price("ltx-2-19b", "i2v", body)
    assert guessed.assumed and guessed.label.startswith("~")
    preset = price("ltx-2-19b", "t2v", {**OPEN, "video_size": "landscape_16_9"})
    assert (preset.inputs["width"], preset.inputs["height"]) == (1024, 576)


def test_clip_shapes() -> None:
    reg = registry()
    pro = timing(reg.endpoint("ltx-2-pro", "t2v"), {**HOSTED, "fps": 50})
    assert (pro.num_frames, pro.frame_rate, pro.size, pro.seconds) == (300, 50, (1920, 1080), 6)
    source = Timing(48, 12.0, width=320, height=180)
    v2v = reg.endpoint("ltx-2-19b", "v2v")
    follows = timing(v2v, {**OPEN, "video_size": "auto"}, source)
    # match_input_fps and match_video_length (fal's defaults): the input's rate and length
    assert (follows.num_frames, follows.frame_rate, follows.size) == (48, 12, (320, 180))
    own = timing(v2v, {**OPEN, "match_input_fps": False, "match_video_length": False}, source)
    assert (own.num_frames, own.frame_rate) == (121, 25)
    retake = reg.endpoint("ltx-2-pro", "retake")
    assert timing(retake, {"duration": 2}, source) == source
    assert timing(retake, {"duration": 2}).assumed
    old = timing(reg.endpoint("ltx-0.9.8-distilled", "t2v"), {"num_frames": 121, "frame_rate": 24})
    assert (old.num_frames, old.frame_rate, old.size, old.assumed) == (121, 24, None, False)


def test_the_plan_json_shows_unit_formula_and_inputs() -> None:
    shown = price("ltx-2-19b", "t2v", OPEN).as_json()
    assert shown["unit"] == "per megapixel"
    assert shown["formula"] == "112 MP (1280x720x121) x $0.0018/MP"
    assert shown["inputs"]["num_frames"] == 121 and shown["assumed_inputs"] is False
