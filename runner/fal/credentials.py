"""fal credentials: a :class:`Secret` that never shows itself, and how a request gets it.

The key is read from ``FAL_KEY`` (or ``FAL_KEY_ID`` + ``FAL_KEY_SECRET``, joined with ``:``
as fal's own client does). It is attached to a request only inside an httpx auth flow and
scrubbed from the request again as soon as the request has been sent, so neither a logged
request, nor an exception that keeps a reference to it, nor a traceback carries it.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncGenerator, Generator, Mapping
from dataclasses import dataclass
from typing import NoReturn

import httpx

from runner.fal.errors import FalKeyMissing

_MASK = "***"
REDACTED = "[redacted]"


class Secret:
    """A string that must not leak: its ``repr``/``str`` show ``***``; read it with ``reveal()``.

    It refuses to be pickled, so it cannot end up in a cache or a journal by accident.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself. Call only where it goes on the wire."""
        return self._value

    def redact(self, text: str) -> str:
        """``text`` with every occurrence of the secret (and of its parts) replaced."""
        if not self._value:
            return text
        for part in {self._value, *self._value.split(":")}:
            if len(part) >= 4:  # a tiny fragment would mangle ordinary text
                text = text.replace(part, REDACTED)
        return text

    def __repr__(self) -> str:
        return f"Secret('{_MASK}')"

    def __str__(self) -> str:
        return _MASK

    def __format__(self, format_spec: str) -> str:
        return _MASK

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, len(self._value)))

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled")

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: object) -> Secret:
        return self


class Redactor:
    """Removes every registered secret from a text: the last guard on error messages."""

    def __init__(self, *secrets: Secret) -> None:
        self._secrets = [s for s in secrets if s]

    def add(self, secret: Secret) -> None:
        if secret and secret not in self._secrets:
            self._secrets.append(secret)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = secret.redact(text)
        return text

    def __repr__(self) -> str:
        return f"Redactor({len(self._secrets)} secrets)"


@dataclass(frozen=True, slots=True)
class Credentials:
    """How requests authenticate: ``Authorization: {scheme} {secret}``.

    ``source`` names where the secret came from (an environment variable name), never the
    secret itself, so it can be shown to a user.
    """

    secret: Secret
    scheme: str = "Key"
    source: str = "FAL_KEY"

    def auth(self) -> SecretAuth:
        """An httpx auth object that sends these credentials."""
        return SecretAuth(self.scheme, self.secret)


def load_credentials(env: Mapping[str, str]) -> Credentials:
    """Credentials from ``FAL_KEY``, else ``FAL_KEY_ID`` + ``FAL_KEY_SECRET``.

    Raises :class:`FalKeyMissing` (whose hint offers the offline ``local`` backend) when
    neither is set, and when a key cannot be sent as an HTTP header.
    """
    key = env.get("FAL_KEY", "").strip()
    if key:
        return Credentials(Secret(_checked(key, "FAL_KEY")), source="FAL_KEY")
    key_id = env.get("FAL_KEY_ID", "").strip()
    key_secret = env.get("FAL_KEY_SECRET", "").strip()
    if key_id and key_secret:
        joined = _checked(f"{key_id}:{key_secret}", "FAL_KEY_ID/FAL_KEY_SECRET")
        return Credentials(Secret(joined), source="FAL_KEY_ID/FAL_KEY_SECRET")
    if key_id or key_secret:
        missing = "FAL_KEY_SECRET" if key_id else "FAL_KEY_ID"
        raise FalKeyMissing(f"{missing} is not set (FAL_KEY_ID and FAL_KEY_SECRET go together)")
    raise FalKeyMissing("no fal API key: FAL_KEY is not set")


def _checked(key: str, source: str) -> str:
    # A key with a newline or non-ASCII text cannot go in a header; httpx would raise an
    # error quoting the value, so refuse it here without echoing it.
    if not key.isascii() or not key.isprintable():
        raise FalKeyMissing(f"{source} holds characters an HTTP header cannot carry")
    return key


class SecretAuth(httpx.Auth):
    """Sets ``Authorization`` for one request and blanks it once the request is done.

    Blanking matters because httpx exceptions and responses keep the request object: a
    wrapped error, a debugger or a crash reporter would otherwise find the key there.
    """

    def __init__(self, scheme: str, secret: Secret) -> None:
        self._scheme = scheme
        self._secret = secret

    def __repr__(self) -> str:
        return f"SecretAuth({self._scheme!r}, {self._secret!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"{self._scheme} {self._secret.reveal()}"
        try:
            yield request
        finally:
            request.headers["Authorization"] = f"{self._scheme} {REDACTED}"

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        # Overridden (not delegated to auth_flow) so the ``finally`` runs when httpx closes
        # this generator, including when the send raised.
        request.headers["Authorization"] = f"{self._scheme} {self._secret.reveal()}"
        try:
            yield request
        finally:
            request.headers["Authorization"] = f"{self._scheme} {REDACTED}"
