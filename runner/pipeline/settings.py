"""The project's settings file, ``shotgraph.toml`` at the project root, committed so that a
whole team shares them. The only code that reads it. Today it holds the shared store::

    # shotgraph.toml: project settings, committed. Never put a secret here.
    [store]
    url = "s3://studio-renders/shotgraph"   # the team's shared store (S3 or compatible)
    region = "auto"                          # optional; else AWS_REGION, then us-east-1
    lease = 60                               # optional; seconds before a dead run's claims
                                             # may be taken over by another machine
    timeout = 20                             # optional; seconds a request is retried before
                                             # the store is reported unreachable

The endpoint and credentials are deliberately not settings: a pull request can change this
file, and must not be able to send a run's requests (signed with the CI's keys) to a
server of its choosing. They come from the machine: ``AWS_ENDPOINT_URL``, ``AWS_PROFILE``,
the AWS files. No file means no settings; unknown keys are errors, with their line.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.errors import ShotgraphError

SETTINGS_FILE = "shotgraph.toml"
_STORE_KEYS = ("url", "region", "lease", "timeout")
_SECRETS = re.compile(r"(secret|password|token|access_key|credential)", re.IGNORECASE)


@dataclass(frozen=True)
class ProjectSettings:
    """What ``shotgraph.toml`` says (all None when there is no such file)."""

    path: Path | None = None
    store_url: str | None = None
    store_region: str | None = None
    store_lease: float | None = None
    store_timeout: float | None = None


def read_settings(project_root: Path) -> ProjectSettings:
    """The settings of the project at ``project_root``: a user error, with file and line,
    for a file that is not TOML or holds what it should not."""
    path = project_root / SETTINGS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ProjectSettings()
    except (OSError, UnicodeDecodeError) as exc:
        raise ShotgraphError(f"cannot read {path}: {exc}") from None
    import tomllib  # here: most projects have no settings file (2-4 ms of every start)

    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ShotgraphError(f"{path}: not valid TOML ({exc})", hint=_FORMAT_HINT) from None
    for name in document:
        if name != "store":
            raise _error(path, text, name, f"unknown section or key '{name}'", "known: [store]")
    store = document.get("store", {})
    if not isinstance(store, dict):
        raise _error(path, text, "store", "'store' must be a table ([store])", _FORMAT_HINT)
    for name in store:
        if _SECRETS.search(name):
            raise _error(
                path,
                text,
                name,
                f"store.{name}: secrets never go in the committed settings",
                "use AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or an AWS profile",
            )
        if name not in _STORE_KEYS:
            hint = "known: " + ", ".join(_STORE_KEYS)
            if name in ("endpoint", "endpoint_url", "profile"):
                hint = "set AWS_ENDPOINT_URL or AWS_PROFILE on the machine instead: a pull " + (
                    "request must not choose where a run's signed requests go"
                )
            raise _error(path, text, name, f"unknown key store.{name}", hint)
    url = _string(path, text, store, "url")
    if url is not None and not url.startswith("s3://"):
        raise _error(path, text, "url", "store.url must be an s3:// URL", _FORMAT_HINT)
    return ProjectSettings(
        path=path,
        store_url=url,
        store_region=_string(path, text, store, "region"),
        store_lease=_seconds(path, text, store, "lease"),
        store_timeout=_seconds(path, text, store, "timeout"),
    )


_FORMAT_HINT = '[store] url = "s3://BUCKET/PREFIX" (see docs/sharing-a-store.md)'


def _seconds(path: Path, text: str, table: dict[str, Any], name: str) -> float | None:
    value = table.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        value = -1
    if not math.isfinite(value) or not 1 <= value <= 86400:
        raise _error(path, text, name, f"store.{name} must be seconds, 1 to 86400", None)
    return float(value)


def _string(path: Path, text: str, table: dict[str, Any], name: str) -> str | None:
    value = table.get(name)
    if value is None or (isinstance(value, str) and value.strip()):
        return None if value is None else str(value).strip()
    raise _error(path, text, name, f"store.{name} must be a non-empty string", _FORMAT_HINT)


def _error(path: Path, text: str, key: str, message: str, hint: str | None) -> ShotgraphError:
    """An error pointing at the line that sets ``key`` (tomllib gives values no lines)."""
    pattern = re.compile(rf"^\s*(\[\s*)?[\"']?{re.escape(key)}[\"']?\s*[=\]]")
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.match(line):
            return ShotgraphError(f"{path}:{number}: {message}", hint=hint)
    return ShotgraphError(f"{path}: {message}", hint=hint)
