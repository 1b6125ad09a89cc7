"""Slack's per-channel limit on chat.postMessage: about one a second, a short burst allowed."""

from __future__ import annotations

import math
import threading
import time


class RateLimiter:
    """A token bucket per key; `acquire` answers 0 when allowed, else the seconds to wait."""

    def __init__(self, per_second: float = 1.0, burst: int = 4) -> None:
        self.per_second = per_second
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    def acquire(self, key: str) -> int:
        """Take one token for `key`; when none is left, the whole seconds until one is (≥1)."""
        with self._lock:
            now = time.monotonic()
            tokens, at = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.per_second)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0
            self._buckets[key] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / self.per_second))
