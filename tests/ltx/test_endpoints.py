"""The endpoint registry, fal-style request checks and prices."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.errors import ShotgraphError
from runner.ltx.pricing import estimate, timing
from runner.ltx.registry import registry
from runner.ltx.schema import input_schema, load_raw

SHARED = Path(__file__).resolve().parents[3] / "shared" / "reference" / "fal-ltx-openapi.json"


def test_every_family_the_seeds_use() -> None:
    reg = registry()
    assert reg.default_family == "ltx-0.9.7-distilled"
    assert (
        reg.endpoint("ltx-0.9.7-distilled", "extend").id == "fal-ai/ltx-video-13b-distilled/extend"
    )
    assert reg.endpoint("ltx-0.9.8-distilled", "multicondition").id == (
        "fal-ai/ltxv-13b-098-distilled/multiconditioning"
    )
    assert reg.endpoint("ltx-0.9.7-dev", "i2v").id == "fal-ai/ltx-video-13b-dev/image-to-video"
    assert reg.endpoint("ltx-video", "i2v").id == "fal-ai/ltx-video/image-to-video"
    # the original family does take the parameters the 13B families must not be sent
    names = reg.endpoint("ltx-video", "t2v").schema.names
    assert "num_inference_steps" in names and "guidance_scale" in names


def test_a_kind_the_family_lacks_is_a_clear_error() -> None:
    with pytest.raises(ShotgraphError, match="has no multicondition endpoint"):
        registry().endpoint("ltx-video", "multicondition")


@pytest.mark.skipif(not SHARED.exists(), reason="fal's OpenAPI bundle is not beside the project")
def test_committed_schemas_match_fals_openapi(tmp_path: Path) -> None:
    from scripts.derive_endpoint_schemas import main

    assert main([str(SHARED), "--out", str(tmp_path)]) == 0
    for endpoint in registry().endpoints():
        for role in ("input", "output"):
            fresh = json.loads((tmp_path / f"{endpoint.id}.{role}.json").read_text())
            assert fresh == load_raw(endpoint.id, role), endpoint.id


def test_errors_have_fals_422_shape_in_field_order() -> None:
    schema = input_schema("fal-ai/ltx-video-13b-distilled/extend")
    errors = schema.check({"num_frames": 500, "video": {"start_frame_num": 4}})
    assert [(e["type"], e["loc"]) for e in errors] == [
        ("missing", ["body", "prompt"]),
        ("less_than_equal", ["body", "num_frames"]),
        ("missing", ["body", "video", "video_url"]),
        ("multiple_of", ["body", "video", "start_frame_num"]),
    ]
    assert errors[1]["msg"] == "Input should be less than or equal to 161"
    assert errors[1]["ctx"] == {"le": 161}


def test_lax_coercion_like_pydantic() -> None:
    schema = input_schema("fal-ai/ltx-video-13b-distilled")
    assert schema.check({"prompt": "x", "num_frames": "121", "expand_prompt": "yes"}) == []
    [error] = schema.check({"prompt": "x", "num_frames": 12.5})
    assert error["type"] == "int_from_float"
    [error] = schema.check({"prompt": 5})
    assert error["type"] == "string_type"


def test_multiple_of_is_exact_for_decimals() -> None:
    schema = input_schema("fal-ai/ltxv-13b-098-distilled")
    assert schema.check({"prompt": "x", "temporal_adain_factor": 0.15}) == []
    assert schema.check({"prompt": "x", "temporal_adain_factor": 0.13})[0]["type"] == "multiple_of"


def test_with_defaults_writes_every_field_in_fal_order() -> None:
    schema = input_schema("fal-ai/ltx-video-13b-distilled/multiconditioning")
    body = schema.with_defaults({"prompt": "x", "images": [{"image_url": "u"}]})
    assert list(body)[:3] == ["prompt", "negative_prompt", "loras"]
    assert body["images"] == [{"image_url": "u", "start_frame_num": 0, "strength": 1}]
    assert body["frame_rate"] == 30 and body["videos"] == []
    again = schema.with_defaults({"prompt": "y"})
    again["loras"].append("mutated")
    assert schema.with_defaults({"prompt": "z"})["loras"] == []


def test_prices() -> None:
    reg = registry()
    multi = reg.endpoint("ltx-0.9.7-distilled", "multicondition")
    assert estimate(multi, {}).usd == 0.04 and estimate(multi, {}).confirmed
    t2v = reg.endpoint("ltx-0.9.7-distilled", "t2v")
    assert estimate(t2v, {}).usd == 0.04 and not estimate(t2v, {}).confirmed
    extend = reg.endpoint("ltx-0.9.8-distilled", "extend")
    body = {"num_frames": 121, "frame_rate": 30}
    assert estimate(extend, body).usd == pytest.approx(
        0.02 * 121 / 24, abs=1e-6
    )  # billed at 24 fps
    assert estimate(extend, body).confirmed
    detail = estimate(extend, {**body, "enable_detail_pass": True})
    assert detail.usd == pytest.approx(2 * 0.02 * 121 / 24, abs=1e-6)
    original = reg.endpoint("ltx-video", "t2v")
    assert estimate(original, {}).usd is None and estimate(original, {}).label == "unpriced"
    assumed = timing(original, {})
    assert assumed.assumed and assumed.num_frames == 121
    assert timing(extend, body).seconds == pytest.approx(121 / 30)
