"""Where a remote store is and how to reach it: ``s3://bucket/prefix`` and the AWS settings.

Everything is taken the standard AWS ways, so S3, R2, MinIO, Ceph, SeaweedFS and GCS's XML
API all work with an endpoint URL:

- endpoint: ``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL``, then the profile's
  ``endpoint_url`` (none: AWS itself). Never the committed project settings: a pull
  request must not choose where a run's signed requests go;
- region: ``AWS_REGION``, ``AWS_DEFAULT_REGION``, the profile's, the project settings',
  then ``us-east-1``;
- credentials: ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (/ ``AWS_SESSION_TOKEN``),
  then the profile's keys (``AWS_PROFILE``, else ``default``; in
  ``AWS_SHARED_CREDENTIALS_FILE`` or ``~/.aws/credentials``, and
  ``AWS_CONFIG_FILE`` or ``~/.aws/config``), then obstore's own chain (web identity, as
  GitHub's OIDC gives; ECS; the instance metadata).

Credentials are kept out of every ``repr`` and message: a store is named by its URL.
"""

from __future__ import annotations

import configparser
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from runner.store.remote import RemoteError

SCHEME = "s3://"
DEFAULT_REGION = "us-east-1"
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")


@dataclass(frozen=True)
class StoreDefaults:
    """What a project's committed settings say about how to reach its remote store."""

    region: str | None = None


@dataclass(frozen=True)
class S3Settings:
    """A bucket and prefix, the endpoint and region, and credentials when they were found
    here (else obstore looks along its own chain)."""

    bucket: str
    prefix: str
    endpoint: str | None = None
    region: str = DEFAULT_REGION
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    credentials_from: str = "the default AWS chain"

    @property
    def url(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.prefix}".rstrip("/")

    def describe(self) -> str:
        """The store for a message: its URL, and the endpoint when it is not AWS."""
        return self.url + (f" (endpoint {self.endpoint})" if self.endpoint else "")


def is_store_url(text: str) -> bool:
    return text.startswith(SCHEME)


def parse_store_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> (bucket, prefix); a usage error for anything else."""
    if not is_store_url(url):
        raise RemoteError(
            f"not a store URL: {url!r}",
            hint="a remote store is named s3://BUCKET/PREFIX (S3, R2, MinIO, GCS, SeaweedFS)",
        )
    bucket, _, prefix = url[len(SCHEME) :].partition("/")
    prefix = prefix.strip("/")
    if _BUCKET.fullmatch(bucket) is None:
        raise RemoteError(
            f"{url}: {bucket!r} is not a bucket name",
            hint="bucket names are 3-63 lowercase letters, digits, dots and hyphens",
        )
    if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
        raise RemoteError(f"{url}: the prefix {prefix!r} has an empty, '.' or '..' part")
    return bucket, prefix


def s3_settings(url: str, env: Mapping[str, str], defaults: StoreDefaults) -> S3Settings:
    """The settings for the store at ``url`` from the environment, the AWS files and the
    project's defaults, in the AWS order (see the module docstring)."""
    bucket, prefix = parse_store_url(url)
    profile_name = env.get("AWS_PROFILE") or env.get("AWS_DEFAULT_PROFILE")
    profile = _profile(env, profile_name or "default", required=profile_name is not None)
    endpoint = (
        env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or profile.get("endpoint_url")
    )
    region = (
        env.get("AWS_REGION")
        or env.get("AWS_DEFAULT_REGION")
        or profile.get("region")
        or defaults.region
        or DEFAULT_REGION
    )
    settings = S3Settings(bucket, prefix, _check_endpoint(endpoint, url), region)
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        return _with_keys(settings, env, "AWS_ACCESS_KEY_ID", "the environment")
    if profile.get("aws_access_key_id") and profile.get("aws_secret_access_key"):
        where = f"profile {profile_name or 'default'}"
        return _with_keys(settings, profile, "aws_access_key_id", where)
    if settings.endpoint and not env.get("AWS_WEB_IDENTITY_TOKEN_FILE"):
        # Instance metadata and container credentials are AWS's own; asking them on behalf
        # of another server would only wait for an address that is not there.
        raise RemoteError(
            f"no credentials for the store {settings.describe()}",
            hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE",
        )
    return settings


def _with_keys(settings: S3Settings, source: Mapping[str, str], key: str, where: str) -> S3Settings:
    upper = key.isupper()
    secret = "AWS_SECRET_ACCESS_KEY" if upper else "aws_secret_access_key"
    token = "AWS_SESSION_TOKEN" if upper else "aws_session_token"
    return S3Settings(
        settings.bucket,
        settings.prefix,
        settings.endpoint,
        settings.region,
        access_key_id=source[key],
        secret_access_key=source[secret],
        session_token=source.get(token) or None,
        credentials_from=where,
    )


def _check_endpoint(endpoint: str | None, url: str) -> str | None:
    if not endpoint:
        return None
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RemoteError(
            f"the endpoint for {url} is not an http(s) URL",
            hint="set AWS_ENDPOINT_URL to e.g. https://ACCOUNT.r2.cloudflarestorage.com",
        )
    if parts.username or parts.password:
        # It would be printed in every message about the store.
        raise RemoteError(
            f"the endpoint for {url} carries credentials in its URL",
            hint="put them in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or a profile",
        )
    return endpoint.rstrip("/")


def _profile(env: Mapping[str, str], name: str, *, required: bool) -> dict[str, str]:
    """A profile's settings: its section of the credentials file over the config file's."""
    home = Path(env.get("HOME") or Path.home())
    config = Path(env.get("AWS_CONFIG_FILE") or home / ".aws" / "config")
    credentials = Path(env.get("AWS_SHARED_CREDENTIALS_FILE") or home / ".aws" / "credentials")
    found: dict[str, str] = {}
    seen = False
    config_section = name if name == "default" else f"profile {name}"
    for path, section in ((config, config_section), (credentials, name)):
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError) as exc:
            raise RemoteError(f"cannot read {path}: {exc.__class__.__name__}") from None
        if parser.has_section(section):
            seen = True
            found.update({key: value.strip() for key, value in parser.items(section)})
    if required and not seen:
        raise RemoteError(
            f"no AWS profile {name!r} in {config} or {credentials}",
            hint="set AWS_PROFILE to a profile that exists, or unset it",
        )
    return found
