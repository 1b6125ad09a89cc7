"""Sending what humans do to the bot, as Slack does: signed HTTP requests or Socket Mode envelopes.

Events go out in the Events API envelope and are retried (same `event_id`, with
`X-Slack-Retry-Num` / `X-Slack-Retry-Reason`) up to 3 times when the app does not answer
2xx within 3 seconds. Slash commands and interactivity are sent once; their answer (the
HTTP body, or the ack's payload in Socket Mode) comes back to the caller. With a Socket Mode
connection open, everything goes over the socket; otherwise to the Request URL.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from bot.slack.workspace.credentials import Credentials
from bot.slack.workspace.socketmode import SocketHub
from bot.slack.workspace.state import APP_ID, BOT_USER_ID, TEAM_ID, Workspace, new_id

log = logging.getLogger(__name__)

ACK_TIMEOUT = 3.0
# Slack retries nearly at once, after a minute, then after five minutes.
RETRY_DELAYS = (0.0, 60.0, 300.0)
# Event subscription names (manifest `bot_events`) and the event types they deliver.
MESSAGE_SUBSCRIPTIONS = {"message.channels": "channel", "message.im": "im"}


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`X-Slack-Signature`: v0= HMAC-SHA256 of `v0:{timestamp}:{body}` with the signing secret."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass
class Reply:
    """The app's answer to a slash command or an interaction."""

    ok: bool
    body: Any = None          # parsed JSON, text, or None for an empty 200 / ack
    error: str | None = None  # Slack's name for what went wrong (dispatch_failed…)


class Delivery:
    def __init__(self, ws: Workspace, credentials: Callable[[], Credentials], hub: SocketHub,
                 bot_events: list[str], *, ack_timeout: float = ACK_TIMEOUT,
                 retry_delays: tuple[float, ...] = RETRY_DELAYS) -> None:
        self.ws, self.hub = ws, hub
        self._credentials = credentials
        self.bot_events = set(bot_events)
        self.ack_timeout = ack_timeout
        self.retry_delays = retry_delays
        self.log: deque[dict[str, Any]] = deque(maxlen=100)
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="workspace-delivery")
        self._timers: set[threading.Timer] = set()
        self._lock = threading.Lock()
        self._closed = False
        token = ws.meta("verification_token")
        if token is None:
            token = secrets.token_urlsafe(18)
            ws.set_meta("verification_token", token)
        self.verification_token = token

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for timer in self._timers:
                timer.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ---- events --------------------------------------------------------------------------

    def subscribed(self, event: dict[str, Any]) -> bool:
        if event["type"] == "message":
            return any(MESSAGE_SUBSCRIPTIONS.get(s) == event.get("channel_type")
                       for s in self.bot_events)
        return event["type"] in self.bot_events

    def send_event(self, event: dict[str, Any]) -> str | None:
        """Queue `event` for the app if it subscribed to it; return the event_id."""
        if not self.subscribed(event):
            return None
        envelope = self.event_envelope(event)
        entry = self._record(f"event {event['type']}", envelope["event_id"])
        self._submit(0.0, self._attempt_event, envelope, entry, 0)
        return envelope["event_id"]

    def event_envelope(self, event: dict[str, Any]) -> dict[str, Any]:
        return {"token": self.verification_token, "team_id": TEAM_ID, "context_team_id": TEAM_ID,
                "context_enterprise_id": None, "api_app_id": APP_ID, "event": event,
                "type": "event_callback", "event_id": new_id("Ev"),
                "event_time": int(time.time()),
                "authorizations": [{"enterprise_id": None, "team_id": TEAM_ID,
                                    "user_id": BOT_USER_ID, "is_bot": True,
                                    "is_enterprise_install": False}],
                "is_ext_shared_channel": False, "event_context": "4-" + secrets.token_hex(20)}

    def _attempt_event(self, envelope: dict[str, Any], entry: dict[str, Any], retry: int) -> None:
        reason = self._deliver_event(envelope, entry, retry)
        if reason is None:
            return self._settle(entry, "delivered")
        if reason == "no_retry" or retry >= len(self.retry_delays):
            return self._settle(entry, "failed", entry.get("detail"))
        entry["retry_reason"] = reason
        self._submit(self.retry_delays[retry], self._attempt_event, envelope, entry, retry + 1)

    def _deliver_event(self, envelope: dict[str, Any], entry: dict[str, Any],
                       retry: int) -> str | None:
        """None when the app took it; else Slack's retry reason."""
        entry["attempts"] = retry + 1
        if self.hub.connected:
            entry["via"] = "socket"
            acked, _ = self.hub.send({"envelope_id": entry["envelope_id"], "payload": envelope,
                                      "type": "events_api", "accepts_response_payload": False,
                                      "retry_attempt": retry,
                                      "retry_reason": entry.get("retry_reason", "") if retry
                                      else ""}, self.ack_timeout)
            entry["detail"] = None if acked else "no ack within 3 s"
            return None if acked else "timeout"
        url = self._request_url(entry)
        if url is None:
            return "connection_failed"
        entry["via"] = "http"
        body = json.dumps(envelope).encode()
        headers = {"Content-Type": "application/json"}
        if retry:
            headers |= {"X-Slack-Retry-Num": str(retry),
                        "X-Slack-Retry-Reason": entry.get("retry_reason", "http_timeout")}
        status, _, response_headers, error = self._post(url, body, headers)
        if status is not None and 200 <= status < 300:
            entry["detail"] = None
            return None
        entry["detail"] = error or f"HTTP {status}"
        if response_headers.get("x-slack-no-retry") == "1":
            return "no_retry"
        return "http_timeout" if error == "timeout" else (
            "connection_failed" if status is None else "http_error")

    # ---- slash commands and interactivity ------------------------------------------------

    def send_request(self, kind: str, payload: dict[str, Any], label: str) -> Reply:
        """Send a slash command (`slash_commands`) or interaction (`interactive`); wait for it."""
        entry = self._record(label, None)
        entry["attempts"] = 1
        if self.hub.connected:
            entry["via"] = "socket"
            acked, answer = self.hub.send({"envelope_id": entry["envelope_id"], "payload": payload,
                                           "type": kind, "accepts_response_payload": True},
                                          self.ack_timeout)
            reply = Reply(True, answer) if acked else Reply(False, error="operation_timeout")
        else:
            reply = self._request_over_http(kind, payload, entry)
        self._settle(entry, "delivered" if reply.ok else "failed", reply.error)
        return reply

    def _request_over_http(self, kind: str, payload: dict[str, Any],
                           entry: dict[str, Any]) -> Reply:
        url = self._request_url(entry)
        if url is None:
            return Reply(False, error="dispatch_failed")
        entry["via"] = "http"
        form = payload if kind == "slash_commands" else {"payload": json.dumps(payload)}
        body = urlencode(form).encode()
        status, text, headers, error = self._post(
            url, body, {"Content-Type": "application/x-www-form-urlencoded"})
        if status is None or not 200 <= status < 300:
            entry["detail"] = error or f"HTTP {status}"
            return Reply(False, error="operation_timeout" if error == "timeout"
                         else "dispatch_failed")
        if not text.strip():
            return Reply(True, None)
        if headers.get("content-type", "").startswith("application/json"):
            try:
                return Reply(True, json.loads(text))
            except json.JSONDecodeError:
                pass
        return Reply(True, text)

    # ---- the Request URL -----------------------------------------------------------------

    def verify_url(self, url: str) -> str | None:
        """Slack's url_verification handshake; None when the app echoed the challenge."""
        challenge = secrets.token_urlsafe(24)
        body = json.dumps({"token": self.verification_token, "challenge": challenge,
                           "type": "url_verification"}).encode()
        status, text, _, error = self._post(url, body, {"Content-Type": "application/json"})
        if status != 200:
            return f"the Request URL {url} answered {error or f'HTTP {status}'}"
        answered = text.strip()
        try:
            parsed = json.loads(answered)
            answered = parsed.get("challenge", "") if isinstance(parsed, dict) else answered
        except json.JSONDecodeError:
            answered = dict(parse_qsl(answered)).get("challenge", answered)
        if answered != challenge:
            return f"the Request URL {url} did not echo the url_verification challenge"
        self.ws.set_meta("verified_url", url)
        return None

    def _request_url(self, entry: dict[str, Any]) -> str | None:
        url = self._credentials().request_url
        if not url:
            entry["detail"] = "no app connected (no Socket Mode connection, no Request URL)"
            return None
        if self.ws.meta("verified_url") != url:
            problem = self.verify_url(url)
            if problem:
                entry["detail"] = problem
                return None
        return url

    def _post(self, url: str, body: bytes, headers: dict[str, str]
              ) -> tuple[int | None, str, dict[str, str], str | None]:
        """(status, body text, lower-cased headers, error) of one signed POST."""
        timestamp = str(int(time.time()))
        secret = self._credentials().signing_secret.get_secret_value()
        request = urllib.request.Request(url, data=body, method="POST", headers={
            **headers, "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": signature(secret, timestamp, body),
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)"})
        try:
            with urllib.request.urlopen(request, timeout=self.ack_timeout) as response:
                text = response.read().decode("utf-8", "replace")
                return response.status, text, _lower(response.headers), None
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8", "replace"), _lower(exc.headers), None
        except TimeoutError:
            return None, "", {}, "timeout"
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError):
                return None, "", {}, "timeout"
            return None, "", {}, f"connection failed ({type(reason).__name__})"

    # ---- the log the page shows ----------------------------------------------------------

    def _record(self, label: str, event_id: str | None) -> dict[str, Any]:
        entry = {"envelope_id": secrets.token_hex(16), "label": label, "event_id": event_id,
                 "status": "pending", "attempts": 0, "via": None, "detail": None,
                 "at": time.time()}
        self.log.append(entry)
        self.ws.touch()
        return entry

    def _settle(self, entry: dict[str, Any], status: str, detail: str | None = None) -> None:
        entry["status"], entry["detail"] = status, detail
        self.ws.touch()

    def _submit(self, delay: float, fn: Callable[..., None], *args: Any) -> None:
        def run() -> None:
            with self._lock:
                if self._closed:
                    return
                self._pool.submit(_logged, fn, *args)

        if delay <= 0:
            return run()
        timer = threading.Timer(delay, run)
        timer.daemon = True
        with self._lock:
            self._timers = {t for t in self._timers if t.is_alive()} | {timer}
        timer.start()


def _logged(fn: Callable[..., None], *args: Any) -> None:
    try:
        fn(*args)
    except Exception:  # a delivery thread must not die silently
        log.exception("workspace delivery failed")


def _lower(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in (headers or {}).items()}
