"""shotgraph.toml, the committed project settings: the shared store's URL, region and
lease; errors with file and line; never a secret, an endpoint or a profile."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.errors import ShotgraphError
from runner.pipeline.settings import SETTINGS_FILE, ProjectSettings, read_settings


def settings(tmp_path: Path, text: str) -> ProjectSettings:
    (tmp_path / SETTINGS_FILE).write_text(text)
    return read_settings(tmp_path)


def test_no_file_no_settings(tmp_path: Path) -> None:
    assert read_settings(tmp_path) == ProjectSettings()


def test_the_store_section(tmp_path: Path) -> None:
    found = settings(
        tmp_path,
        '# the team store\n[store]\nurl = "s3://renders/team"\nregion = "auto"\nlease = 90\n',
    )
    assert (found.store_url, found.store_region, found.store_lease) == (
        "s3://renders/team",
        "auto",
        90.0,
    )


@pytest.mark.parametrize(
    ("text", "where", "says"),
    [
        ('[store]\nurl = "s3://a/b"\nsecret_access_key = "x"\n', ":3:", "secrets never go"),
        ('[store]\nurl = "s3://a/b"\nendpoint = "https://evil"\n', ":3:", "unknown key"),
        ('[store]\nurl = "https://a/b"\n', ":2:", "must be an s3:// URL"),
        ('[store]\nurl = "s3://a/b"\nlease = 0\n', ":3:", "lease must be seconds"),
        ('[store]\nurl = "s3://a/b"\nlease = true\n', ":3:", "lease must be seconds"),
        ('[stor]\nurl = "s3://a/b"\n', ":1:", "unknown section"),
        ("[store]\nurl = \n", "", "not valid TOML"),
    ],
)
def test_mistakes_are_errors_with_their_line(
    tmp_path: Path, text: str, where: str, says: str
) -> None:
    with pytest.raises(ShotgraphError) as raised:
        settings(tmp_path, text)
    assert f"{SETTINGS_FILE}{where}" in raised.value.message and says in raised.value.message
    assert "evil" not in raised.value.render().replace('"https://evil"', "")


def test_an_endpoint_in_the_file_is_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(ShotgraphError) as raised:
        settings(tmp_path, '[store]\nurl = "s3://a/b"\nendpoint = "https://x"\n')
    assert raised.value.hint is not None and "AWS_ENDPOINT_URL" in raised.value.hint
