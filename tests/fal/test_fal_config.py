"""Configuration, credentials and endpoint ids."""

from __future__ import annotations

import copy
import pickle

import httpx
import pytest
from fal_fakes import MARKER_ID, MARKER_KEY, MARKER_SECRET

from runner.errors import ShotgraphError
from runner.fal import (
    DEFAULT_QUEUE_URL,
    DEFAULT_REST_URL,
    EndpointId,
    FalClient,
    FalConfig,
    FalConfigError,
    FalKeyMissing,
    Secret,
    load_credentials,
)
from runner.fal.credentials import SecretAuth
from runner.fal.endpoint import request_url, submit_url

# -- config ------------------------------------------------------------------------------


def test_defaults() -> None:
    config = FalConfig.from_env({})
    assert config.queue_url == DEFAULT_QUEUE_URL == "https://queue.fal.run"
    assert config.rest_url == DEFAULT_REST_URL == "https://rest.fal.ai"


def test_the_platform_api_and_the_listings_settle_and_poll_times_come_from_the_environment() -> (
    None
):
    assert FalConfig.from_env({}).api_url == "https://api.fal.ai/v1"
    assert FalConfig.from_env({}).listing_settle == 600.0
    env = {"SHOTGRAPH_FAL_API_URL": "http://127.0.0.1:9/v1/", "SHOTGRAPH_FAL_LISTING_SETTLE": "30"}
    config = FalConfig.from_env(env)
    assert (config.api_url, config.listing_settle) == ("http://127.0.0.1:9/v1", 30.0)
    with pytest.raises(FalConfigError, match="SHOTGRAPH_FAL_LISTING_SETTLE"):
        FalConfig.from_env({"SHOTGRAPH_FAL_LISTING_SETTLE": "soon"})
    assert FalConfig.from_env({}).listing_poll == 5.0
    assert FalConfig.from_env({"SHOTGRAPH_FAL_LISTING_POLL": "0.25"}).listing_poll == 0.25
    with pytest.raises(FalConfigError, match="SHOTGRAPH_FAL_LISTING_POLL"):
        FalConfig.from_env({"SHOTGRAPH_FAL_LISTING_POLL": "often"})


def test_fal_queue_run_host_is_a_host_over_https() -> None:
    config = FalConfig.from_env({"FAL_QUEUE_RUN_HOST": "queue.falrun.com"})
    assert config.queue_url == "https://queue.falrun.com"


def test_fal_queue_run_host_rejects_a_url_and_points_to_the_url_variable() -> None:
    with pytest.raises(FalConfigError) as info:
        FalConfig.from_env({"FAL_QUEUE_RUN_HOST": "http://127.0.0.1:9000"})
    assert "SHOTGRAPH_FAL_QUEUE_URL" in (info.value.hint or "")


def test_full_url_overrides_win_over_the_host_and_options_win_over_both() -> None:
    env = {
        "FAL_QUEUE_RUN_HOST": "queue.falrun.com",
        "SHOTGRAPH_FAL_QUEUE_URL": "http://127.0.0.1:8123/",
        "SHOTGRAPH_FAL_REST_URL": "http://127.0.0.1:8123/rest",
    }
    config = FalConfig.from_env(env)
    assert config.queue_url == "http://127.0.0.1:8123"
    assert config.rest_url == "http://127.0.0.1:8123/rest"
    assert FalConfig.from_env(env, queue_url="http://proxy:1").queue_url == "http://proxy:1"


@pytest.mark.parametrize("url", ["ftp://x", "queue.fal.run", "http://", "https://h/?a=1"])
def test_bad_urls_are_config_errors(url: str) -> None:
    with pytest.raises(FalConfigError):
        FalConfig(queue_url=url)


# -- credentials -------------------------------------------------------------------------


def test_key_from_fal_key() -> None:
    creds = load_credentials({"FAL_KEY": f"  {MARKER_KEY}\n"})
    assert creds.secret.reveal() == MARKER_KEY
    assert creds.source == "FAL_KEY"


def test_key_from_id_and_secret() -> None:
    creds = load_credentials({"FAL_KEY_ID": MARKER_ID, "FAL_KEY_SECRET": MARKER_SECRET})
    assert creds.secret.reveal() == MARKER_KEY
    assert creds.source == "FAL_KEY_ID/FAL_KEY_SECRET"


def test_missing_key_is_a_shotgraph_error_offering_the_local_backend() -> None:
    with pytest.raises(FalKeyMissing) as info:
        load_credentials({})
    err = info.value
    assert isinstance(err, ShotgraphError)
    assert "FAL_KEY" in err.message
    assert "--backend local" in (err.hint or "")
    assert "--backend local" in err.render()


def test_half_a_key_pair_says_which_half_is_missing() -> None:
    with pytest.raises(FalKeyMissing, match="FAL_KEY_SECRET"):
        load_credentials({"FAL_KEY_ID": MARKER_ID})


def test_a_key_that_cannot_be_a_header_is_refused_without_echoing_it() -> None:
    with pytest.raises(FalKeyMissing) as info:
        load_credentials({"FAL_KEY": MARKER_KEY + "\x00é"})
    assert MARKER_ID not in str(info.value) and MARKER_SECRET not in str(info.value)


def test_client_from_env_requires_a_key_for_the_fal_backend() -> None:
    with pytest.raises(FalKeyMissing):
        FalClient.from_env({})


async def test_client_from_env_without_a_key_for_the_emulator() -> None:
    client = FalClient.from_env(
        {"SHOTGRAPH_FAL_QUEUE_URL": "http://127.0.0.1:1"}, require_key=False
    )
    assert "no key" in repr(client)
    await client.aclose()


# -- Secret ------------------------------------------------------------------------------


def test_secret_never_shows_itself() -> None:
    secret = Secret(MARKER_KEY)
    shown = [repr(secret), str(secret), f"{secret}", f"{secret!r}", f"{secret:>40}"]
    shown.append("%s" % (secret,))  # noqa: UP031
    shown.append(repr(load_credentials({"FAL_KEY": MARKER_KEY})))
    shown.append(repr(SecretAuth("Key", secret)))
    for text in shown:
        assert MARKER_ID not in text and MARKER_SECRET not in text, text
    assert secret.reveal() == MARKER_KEY


def test_secret_refuses_pickling_and_copies_to_itself() -> None:
    secret = Secret(MARKER_KEY)
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    assert copy.deepcopy(secret) is secret
    assert Secret("a" * 8) == Secret("a" * 8) and Secret("a" * 8) != Secret("b" * 8)


def test_secret_redacts_the_key_and_its_halves() -> None:
    secret = Secret(MARKER_KEY)
    text = f"echo {MARKER_KEY} and {MARKER_SECRET} and {MARKER_ID}"
    redacted = secret.redact(text)
    assert MARKER_ID not in redacted and MARKER_SECRET not in redacted


async def test_auth_flow_sets_the_header_then_scrubs_it() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        response = await client.get("https://x.test/", auth=SecretAuth("Key", Secret(MARKER_KEY)))
    assert seen == [f"Key {MARKER_KEY}"]
    assert MARKER_SECRET not in response.request.headers["authorization"]


# -- endpoint ids ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint_id", "owner", "alias", "path", "namespace", "app"),
    [
        ("fal-ai/ltx-video", "fal-ai", "ltx-video", None, None, "fal-ai/ltx-video"),
        (
            "fal-ai/ltx-video-13b-distilled/image-to-video",
            "fal-ai",
            "ltx-video-13b-distilled",
            "image-to-video",
            None,
            "fal-ai/ltx-video-13b-distilled",
        ),
        ("fal-ai/ltx-2/text-to-video/fast", "fal-ai", "ltx-2", "text-to-video/fast", None, None),
        ("workflows/me/flow/run", "me", "flow", "run", "workflows", "workflows/me/flow"),
        ("comfy/me/graph", "me", "graph", None, "comfy", "comfy/me/graph"),
        ("123-my-app", "123", "my-app", None, None, "123/my-app"),
    ],
)
def test_endpoint_ids_split_as_fal_does(
    endpoint_id: str,
    owner: str,
    alias: str,
    path: str | None,
    namespace: str | None,
    app: str | None,
) -> None:
    parsed = EndpointId.parse(endpoint_id)
    assert (parsed.owner, parsed.alias, parsed.path, parsed.namespace) == (
        owner,
        alias,
        path,
        namespace,
    )
    if app is not None:
        assert parsed.app == app


@pytest.mark.parametrize("bad", ["", "ltx", "fal-ai/", "fal-ai//x", "fal ai/ltx", "../etc/x"])
def test_malformed_endpoint_ids(bad: str) -> None:
    with pytest.raises(FalConfigError):
        EndpointId.parse(bad)


def test_submit_keeps_the_path_and_request_urls_drop_it() -> None:
    endpoint = EndpointId.parse("fal-ai/ltx-video-13b-distilled/extend")
    assert submit_url("https://q", endpoint) == "https://q/fal-ai/ltx-video-13b-distilled/extend"
    assert request_url("https://q", endpoint, "a/b") == (
        "https://q/fal-ai/ltx-video-13b-distilled/requests/a%2Fb"
    )


ORIGIN_CASES = [
    "https://queue.fal.run",
    "https://queue.fal.run/x/y?z=1",
    "https://QUEUE.fal.run:443/a",
    "HTTPS://queue.fal.run/a",
    "http://queue.fal.run/a",
    "https://queue.fal.run:8443/",
    "https://queue.fal.run.evil.com/a",
    "https://evil.com?x=https://queue.fal.run",
    "https://evil.com#https://queue.fal.run/",
    "https://user@queue.fal.run/a",
    "https://queue.fal.run@evil.com/a",
    "https://evil.com\\@queue.fal.run/",
    "http://127.0.0.1:8000/a",
    "http://[::1]/y",
    "//queue.fal.run/a",
    "https://bücher.example/",
]


@pytest.mark.parametrize("a", ORIGIN_CASES)
def test_same_origin_agrees_with_a_whole_parse_of_both_urls(a: str) -> None:
    # same_origin parses only up to the end of the authority (it runs for every request,
    # to decide where the key goes): it must say what parsing the whole URLs says.
    from runner.fal.config import same_origin

    def origin(url: str) -> tuple[str, str, int | None]:
        parsed = httpx.URL(url)
        return (
            parsed.scheme,
            parsed.host,
            parsed.port or {"http": 80, "https": 443}.get(parsed.scheme),
        )

    for b in ORIGIN_CASES:
        assert same_origin(a, b) == (origin(a) == origin(b)), (a, b)
