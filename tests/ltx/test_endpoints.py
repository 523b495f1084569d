"""The endpoint registry, fal-style request checks and prices."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.errors import ShotgraphError
from runner.ltx.clip import timing
from runner.ltx.pricing import estimate
from runner.ltx.registry import registry
from runner.ltx.schema import input_schema, load_raw
from runner.resources import data_file

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


def test_the_ltx2_families_and_their_kinds() -> None:
    reg = registry()
    kinds = {name: set(reg.family(name).endpoints) for name in reg.families if "ltx-2" in name}
    assert kinds == {
        "ltx-2-pro": {"t2v", "i2v", "retake"},
        "ltx-2-fast": {"t2v", "i2v", "retake"},
        "ltx-2-19b": {"t2v", "i2v", "v2v", "extend"},
        "ltx-2-19b-distilled": {"t2v", "i2v", "v2v", "extend"},
    }
    assert reg.endpoint("ltx-2-19b", "extend").id == "fal-ai/ltx-2-19b/extend-video"
    twin = reg.endpoint("ltx-2-19b-distilled", "v2v", lora=True)
    assert twin.id == "fal-ai/ltx-2-19b/distilled/video-to-video/lora" and twin.lora
    assert reg.endpoint_by_id(twin.id) == twin
    # Pro has no /lora twin: asking for one gives the endpoint itself
    assert reg.endpoint("ltx-2-pro", "t2v", lora=True).id == "fal-ai/ltx-2/text-to-video"
    assert all(e.sound for e in reg.endpoints() if "ltx-2" in e.family)
    assert not reg.endpoint("ltx-2-pro", "i2v").seeded and reg.endpoint("ltx-2-19b", "i2v").seeded


def test_ltx2_extend_takes_a_top_level_video_url() -> None:
    names = registry().endpoint("ltx-2-19b", "extend").schema.names
    assert "video_url" in names and "video" not in names
    retake = registry().endpoint("ltx-2-pro", "retake").schema
    assert {"video_url", "start_time", "duration", "retake_mode"} <= set(retake.names)


def test_forbidden_parameters_are_per_family() -> None:
    reg = registry()
    dev = reg.endpoint("ltx-2-19b", "t2v")
    assert "guidance_scale" not in dev.forbidden and dev.schema.field("guidance_scale")
    assert (
        "takes no guidance scale"
        in reg.endpoint("ltx-2-19b-distilled", "t2v").forbidden["guidance_scale"]
    )
    assert "LTX 13B" in reg.endpoint("ltx-0.9.7-distilled", "t2v").forbidden["guidance_scale"]
    assert "duration" in reg.endpoint("ltx-2-pro", "t2v").forbidden["num_frames"]


def test_fals_deprecated_endpoints_name_their_replacement() -> None:
    reg = registry()
    found = reg.deprecation("fal-ai/ltx-video-v097/extend")
    assert found is not None and "ltx-video-13b-distilled" in found.replacement
    assert reg.deprecation("fal-ai/ltx-video-lora/image-to-video") is not None
    assert reg.deprecation("fal-ai/ltx-video-13b-distilled") is None
    assert reg.deprecation("fal-ai/ltx-video-lorax") is None  # a prefix only at a "/"


def test_unions_and_nullable_fields_answer_as_pydantic() -> None:
    schema = input_schema("fal-ai/ltx-2-19b/text-to-video")
    assert schema.check({"prompt": "x", "seed": None, "video_size": {"width": 640}}) == []
    errors = schema.check({"prompt": "x", "video_size": "huge"})
    # The branches as a pydantic model generated from the schema names them (see
    # tests/ltx/test_pydantic_parity.py): the object by its title, the inline enum by its field.
    assert [e["loc"][2] for e in errors] == ["ImageSize", "enum[VideoSize]"]
    assert schema.with_defaults({"prompt": "x", "video_size": {"width": 640}})["video_size"] == {
        "width": 640,
        "height": 512,
    }


def test_the_families_read_alike_with_either_yaml_loader() -> None:
    """The registry reads its data with libyaml's loader; PyYAML's own gives the same."""
    import yaml

    text = data_file("families.yaml").read_text()
    fast = yaml.load(text, Loader=yaml.CSafeLoader)
    assert fast == yaml.load(text, Loader=yaml.SafeLoader)
    assert fast["families"] and fast["forbidden_params"]
