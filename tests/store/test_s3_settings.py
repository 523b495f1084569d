"""Reaching a shared store the AWS ways: the URL, the endpoint, region and credentials from
the environment and profiles, in AWS's order; credentials never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.store import RemoteError, StoreDefaults
from runner.store.s3_settings import parse_store_url, s3_settings


def test_store_urls() -> None:
    assert parse_store_url("s3://studio-renders/team/ep1/") == ("studio-renders", "team/ep1")
    assert parse_store_url("s3://studio-renders") == ("studio-renders", "")
    for bad in ("https://x/y", "s3://Bad_Bucket/x", "s3://ok-bucket/a/../b", "s3://x/y"):
        with pytest.raises(RemoteError):
            parse_store_url(bad)


def test_the_environment_comes_first_then_the_profile_then_the_project(tmp_path: Path) -> None:
    (tmp_path / "config").write_text(
        "[profile r2]\nregion = auto\nendpoint_url = https://acct.r2.example\n"
    )
    (tmp_path / "credentials").write_text(
        "[r2]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = profile-secret\n"
    )
    env = {
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        "AWS_PROFILE": "r2",
    }
    found = s3_settings("s3://renders/x", env, StoreDefaults(region="eu-west-1"))
    assert (found.endpoint, found.region) == ("https://acct.r2.example", "auto")
    assert (found.access_key_id, found.credentials_from) == ("AKIDPROFILE", "profile r2")
    env |= {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000/",
        "AWS_REGION": "us-west-2",
        "AWS_ACCESS_KEY_ID": "AKIDENV",
        "AWS_SECRET_ACCESS_KEY": "env-secret",
    }
    found = s3_settings("s3://renders/x", env, StoreDefaults(region="eu-west-1"))
    assert (found.endpoint, found.region, found.access_key_id) == (
        "http://127.0.0.1:9000",
        "us-west-2",
        "AKIDENV",
    )
    assert "env-secret" not in repr(found) and "AKIDENV" not in repr(found)
    assert found.describe() == "s3://renders/x (endpoint http://127.0.0.1:9000)"
    bare = s3_settings("s3://renders/x", {"HOME": str(tmp_path)}, StoreDefaults("eu-west-1"))
    assert (bare.region, bare.access_key_id, bare.endpoint) == ("eu-west-1", None, None)


def test_a_missing_profile_or_an_endpoint_with_credentials_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RemoteError, match="no AWS profile 'nope'"):
        s3_settings(
            "s3://renders/x", {"HOME": str(tmp_path), "AWS_PROFILE": "nope"}, StoreDefaults()
        )
    env = {"HOME": str(tmp_path), "AWS_ENDPOINT_URL": "https://key:secret@host.example"}
    with pytest.raises(RemoteError) as raised:
        s3_settings("s3://renders/x", env, StoreDefaults())
    assert "secret" not in raised.value.message.replace("credentials", "")
