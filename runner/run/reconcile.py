"""Finding the job of an uncertain submit in fal's request listing, before paying again.

A submit is uncertain when fal may have accepted it without our knowing its request id: a
run killed between the POST and fal's answer (its journal entry still says "submitting"),
an answer lost on the way back (a dropped connection, a read timeout after sending, a 2xx
with no request id). fal has no idempotency key, but it lists an account's requests per
endpoint with their input payloads (:mod:`runner.fal.listing`). The journal entry holds
what a look-up needs: the endpoint, the exact body and its sha256 over canonical JSON, and
the time of every attempt. So:

- list the endpoint's requests sent since the first attempt (less :data:`CLOCK_SKEW`:
  fal's clock is not ours) with their payloads, and keep those whose ``json_input`` has the
  body's sha256. A match is the job: re-attach to it. Two matches (two attempts that both
  reached fal) are both paid for; the earliest is collected and the run says so.
- no match: fal does not say whether queued or running requests are listed, nor how soon a
  finished one appears, so keep looking every ``listing_poll`` seconds until
  ``listing_settle`` seconds after the last attempt. Only then is the job taken to be
  missing, and submitted again (the caller says so).
- the listing cannot be read (a key without access to fal's platform API, fal down):
  :class:`ListingUnavailable`, and the caller decides.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from runner.fal import FalConfig, FalError
from runner.run.queue_client import QueueClient
from runner.store import JournalEntry
from runner.store.journal import body_digest

#: How far fal's clock may be behind ours: the window opens this long before the first
#: attempt.
CLOCK_SKEW = 120.0


@dataclass(frozen=True)
class Found:
    """The job of an uncertain submit, and how many other requests had the same body."""

    request_id: str
    others: tuple[str, ...] = ()


class ListingUnavailable(Exception):
    """fal's request listing could not be read; ``reason`` says why (for the user)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def find_job(
    client: QueueClient,
    entry: JournalEntry,
    *,
    waiting: Callable[[float], None] = lambda seconds: None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Found | None:
    """The job fal made of ``entry``'s body, or None when fal's listing has none by
    ``listing_settle`` seconds after the last attempt. ``waiting`` is told, once, how many
    seconds it may still look (so the run can say why a node is waiting)."""
    assert entry.endpoint is not None and entry.body_sha256 is not None
    attempts = entry.attempts or (entry.at,)
    since = min(attempts) - CLOCK_SKEW
    deadline = max(attempts) + client.config.listing_settle
    told = False
    while True:
        found = await _look(client, entry.endpoint, entry.body_sha256, since)
        if found is not None:
            return found
        left = deadline - clock()
        if left <= 0:
            return None
        if not told:
            waiting(left)
            told = True
        await sleep(min(client.config.listing_poll, left))


async def _look(client: QueueClient, endpoint: str, digest: str, since: float) -> Found | None:
    matches: list[tuple[float, str]] = []
    try:
        async for item in client.list_requests(endpoint, since):
            if item.endpoint_id == endpoint and _digest(item.json_input) == digest:
                sent = item.sent_at if item.sent_at is not None else float("inf")
                matches.append((sent, item.request_id))
    except FalError as exc:
        raise ListingUnavailable(exc.message) from None
    ids = list(dict.fromkeys(request_id for _, request_id in sorted(matches)))
    return Found(ids[0], tuple(ids[1:])) if ids else None


def _digest(payload: Any) -> str | None:
    return body_digest(payload) if isinstance(payload, Mapping) else None


# What a run says about a look-up (as notices on the node).


def found_it(found: Found) -> str:
    message = f"found it in fal's request listing: re-attaching to request {found.request_id}"
    if found.others:
        message += (
            f"; fal also ran {len(found.others)} more job(s) with this very body "
            f"({', '.join(found.others)}), paid for but not needed"
        )
    return message


def still_looking(seconds: float) -> str:
    return (
        "not in fal's request listing yet (fal may list a request only once it has ended); "
        f"looking again for up to {seconds:.0f} s before submitting again"
    )


def missing(config: FalConfig) -> str:
    return (
        f"the job is not in fal's request listing {config.listing_settle:g} s after it was "
        "sent, so fal never queued it; sending the very same request again"
    )
