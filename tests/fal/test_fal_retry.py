"""The retry policy as a table: what is retried under which mode, and how long to wait."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import pytest
from fal_fakes import nginx_page

from runner.fal import RetryPolicy
from runner.fal.retry import (
    RetryMode,
    is_ingress_error,
    retry_after,
    should_retry_exception,
    should_retry_response,
)


def test_backoff_is_exponential_jittered_and_capped() -> None:
    draws: list[tuple[float, float]] = []

    def uniform(a: float, b: float) -> float:
        draws.append((a, b))
        return 1.5  # the top of the jitter range

    policy = RetryPolicy(base_delay=0.1, max_delay=10.0, uniform=uniform)
    assert [round(policy.backoff(n), 6) for n in (1, 2, 3, 4)] == [0.15, 0.3, 0.6, 1.2]
    assert policy.backoff(12) == 10.0  # min(204.8, 10)·1.5, capped again at 10
    assert set(draws) == {(0.5, 1.5)}
    low = RetryPolicy(uniform=lambda a, b: a)
    assert low.backoff(3) == pytest.approx(0.2)


def test_retry_after_seconds_and_http_date() -> None:
    now = 1_700_000_000.0
    assert retry_after({"retry-after": "7"}) == 7.0
    assert retry_after({"retry-after": "0.25"}) == 0.25
    date = format_datetime(datetime.fromtimestamp(now + 30, UTC), usegmt=True)
    assert retry_after({"retry-after": date}, clock=lambda: now) == pytest.approx(30)
    past = format_datetime(datetime.fromtimestamp(now - 30, UTC), usegmt=True)
    assert retry_after({"retry-after": past}, clock=lambda: now) == 0.0
    assert retry_after({"retry-after": "soon"}) is None
    assert retry_after({}) is None


def test_delay_prefers_retry_after_and_bounds_it() -> None:
    policy = RetryPolicy(uniform=lambda a, b: 1.0, max_retry_after=60)
    assert policy.delay(1, {"retry-after": "3"}) == 3.0
    assert policy.delay(1, {"retry-after": "3600"}) == 60
    assert policy.delay(2, {}) == pytest.approx(0.2)


NGINX = {502: nginx_page(502), 503: nginx_page(503), 504: nginx_page(504)}
FROM_APP = {"x-fal-request-id": "r1"}


@pytest.mark.parametrize(
    ("status", "headers", "text", "idempotent", "submit"),
    [
        (408, {}, "", True, True),
        (409, {}, "", True, False),
        (429, {}, "", True, True),
        (502, {}, NGINX[502], True, False),
        (503, {}, NGINX[503], True, True),
        (504, {}, NGINX[504], True, False),
        (503, FROM_APP, NGINX[503], False, False),  # fal's own answer, not the gateway's
        (503, {}, '{"detail": "runner_scheduling_failure"}', False, False),
        (500, {}, NGINX[502], False, False),
        (504, {"X-Fal-Request-Timeout-Type": "user"}, NGINX[504], False, False),
        (400, {}, "", False, False),
        (401, {}, "", False, False),
        (422, {}, "", False, False),
    ],
)
def test_which_responses_are_retried(
    status: int, headers: dict[str, str], text: str, idempotent: bool, submit: bool
) -> None:
    h = httpx.Headers(headers)
    assert should_retry_response("idempotent", status, h, text) is idempotent
    assert should_retry_response("submit", status, h, text) is submit
    assert should_retry_response("never", status, h, text) is False


def test_ingress_detection() -> None:
    assert is_ingress_error(502, httpx.Headers(), NGINX[502])
    assert not is_ingress_error(502, httpx.Headers(FROM_APP), NGINX[502])
    assert not is_ingress_error(502, httpx.Headers(), "upstream error")


REQUEST = httpx.Request("POST", "https://q.test/x")


@pytest.mark.parametrize(
    ("exc", "idempotent", "submit"),
    [
        (httpx.ConnectError("refused"), True, True),
        (httpx.ConnectTimeout("slow"), True, True),
        (httpx.PoolTimeout("busy"), True, True),
        (httpx.ReadTimeout("slow"), True, False),
        (httpx.WriteTimeout("slow"), True, False),
        (httpx.ReadError("reset"), True, False),
        (httpx.WriteError("reset"), True, False),
        (httpx.RemoteProtocolError("closed"), True, False),
        (httpx.UnsupportedProtocol("gopher"), False, False),
    ],
)
def test_which_transport_errors_are_retried(
    exc: httpx.TransportError, idempotent: bool, submit: bool
) -> None:
    modes: dict[RetryMode, bool] = {"idempotent": idempotent, "submit": submit, "never": False}
    for mode, expected in modes.items():
        assert should_retry_exception(mode, exc, httpx.Headers()) is expected, mode


def test_a_timeout_under_the_callers_own_deadline_is_not_retried() -> None:
    deadline = httpx.Headers({"X-Fal-Request-Timeout": "30"})
    assert not should_retry_exception("idempotent", httpx.ReadTimeout("t"), deadline)
    assert should_retry_exception("idempotent", httpx.ReadError("t"), deadline)
