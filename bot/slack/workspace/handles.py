"""Short-lived handles Slack gives an app with each interaction: trigger ids and response URLs.

A trigger id lets the app open a modal for the user who acted, within 3 seconds; a response
URL lets it answer in the channel (or the user's view of it) up to 5 times in 30 minutes.
They live in memory only: after a restart Slack's would have expired too.
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any

TRIGGER_TTL = 3.0
RESPONSE_URL_TTL = 30 * 60.0
RESPONSE_URL_USES = 5


class Handles:
    def __init__(self, trigger_ttl: float = TRIGGER_TTL) -> None:
        self.trigger_ttl = trigger_ttl
        self._triggers: dict[str, tuple[str, float]] = {}
        self._responses: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def new_trigger(self, user: str) -> str:
        trigger = (f"{int(time.time())}.{secrets.randbelow(10**10)}."
                   f"{secrets.token_hex(16)}")
        with self._lock:
            self._triggers[trigger] = (user, time.monotonic())
        return trigger

    def use_trigger(self, trigger: str) -> tuple[str | None, str | None]:
        """(the user it was issued for, None) or (None, Slack's error name)."""
        with self._lock:
            found = self._triggers.pop(trigger, None)
        if found is None:
            return None, "invalid_trigger_id"
        user, at = found
        if time.monotonic() - at > self.trigger_ttl:
            return None, "expired_trigger_id"
        return user, None

    def new_response_url(self, context: dict[str, Any]) -> str:
        """A token for `/response/<token>`; `context` says where answers go."""
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._responses[token] = {**context, "_at": time.monotonic(), "_uses": 0}
        return token

    def use_response_url(self, token: str) -> dict[str, Any] | None:
        with self._lock:
            context = self._responses.get(token)
            if context is None or time.monotonic() - context["_at"] > RESPONSE_URL_TTL \
                    or context["_uses"] >= RESPONSE_URL_USES:
                return None
            context["_uses"] += 1
            return dict(context)
