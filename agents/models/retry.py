"""Explicit retries around one model call (the SDKs' own retries are off).

Retried: 429, 5xx, 529 overloaded, timeouts, connection errors — up to `max_retries`,
with exponential backoff and jitter, or exactly the wait the server asked for
(Retry-After, retry-after-ms, Gemini's RetryInfo). Anything else fails at once. Each
provider turns its SDK's exceptions into a `Failure`; this module decides what to do.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from agents.models.protocol import ModelError

T = TypeVar("T")
Sleep = Callable[[float], None]

BASE_DELAY_S = 1.0
MAX_DELAY_S = 60.0  # caps a server's Retry-After too: one call never sleeps longer


@dataclass(frozen=True)
class Failure:
    """What went wrong with one attempt, in provider-neutral terms."""

    problem: str  # "rate limited", "the API key was refused", ...
    status: int | None = None  # HTTP status; None for timeouts and connection errors
    retryable: bool = False
    retry_after: float | None = None  # seconds the server asked us to wait
    advice: str = ""


def retryable_status(status: int) -> bool:
    return status == 429 or status >= 500  # 529 is Anthropic's "overloaded"


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from `retry-after-ms` or `retry-after` (seconds or an HTTP date)."""
    if not headers:
        return None
    try:
        if headers.get("retry-after-ms"):
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        value = headers.get("retry-after")
        if value:
            try:
                return max(0.0, float(value))
            except ValueError:
                when = email.utils.parsedate_to_datetime(value)
                return max(0.0, when.timestamp() - time.time())
    except (ValueError, TypeError):
        return None
    return None


def http_failure(status: int, detail: str | None, *, key_env: str,
                 wait: float | None = None) -> Failure:
    """The Failure for an HTTP error status; `detail` is the API's own message."""
    said = f": {detail[:200]}" if detail else ""
    if status == 429:
        return Failure("rate limited", status, True, wait,
                       "lower concurrency or ask the provider for a higher rate limit")
    if retryable_status(status):
        problem = "overloaded" if status == 529 else "server error"
        return Failure(problem, status, True, wait, "the provider is having trouble; try later")
    if status == 401:
        return Failure("the API key was refused", status, advice=f"check {key_env}")
    if status == 403:
        return Failure(f"permission denied{said}", status,
                       advice=f"check that the key in {key_env} may use this model")
    if status == 404:
        return Failure(f"not found{said}", status,
                       advice="check the model id in models.roles and the base_url")
    if detail and "temperature" in detail:
        return Failure(f"the request was rejected{said}", status,
                       advice="set this role's temperature to null in models.roles")
    return Failure(f"the request was rejected{said}", status)


def backoff(attempt: int, rng: random.Random) -> float:
    """Exponential with equal jitter: attempt 0 waits 0.5–1 s, then 1–2 s, 2–4 s, …"""
    ceiling = min(MAX_DELAY_S, BASE_DELAY_S * 2**attempt)
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def call_with_retries(call: Callable[[], T], *, classify: Callable[[Exception], Failure | None],
                      provider: str, model: str, max_retries: int, sleep: Sleep = time.sleep,
                      rng: random.Random | None = None) -> T:
    """Run `call`; retry what `classify` calls retryable; raise ModelError when done.

    `classify` returns None for exceptions that are not the provider's (bugs): they
    propagate untouched.
    """
    rng = rng or random.Random()
    for attempt in range(max_retries + 1):
        try:
            return call()
        except Exception as exc:
            failure = classify(exc)
            if failure is None:
                raise
            if not failure.retryable or attempt == max_retries:
                raise ModelError(provider, model, failure.problem, status=failure.status,
                                 advice=failure.advice, attempts=attempt + 1) from exc
            wait = failure.retry_after
            sleep(min(wait, MAX_DELAY_S) if wait is not None else backoff(attempt, rng))
    raise AssertionError("unreachable")
