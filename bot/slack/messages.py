"""Every message the bot posts, once: posting looks up the message's key in the store first.

A key names what a message shows (`card:3` is issue 3's card, `report:7` investigation 7's
report), so a restart, a retried event or a second click finds the message instead of posting
it again, and updates edit it in place.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from typing import Any

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from bot.errors import SleuthError
from bot.store.models import SlackMessage, utcnow

log = logging.getLogger(__name__)
Blocks = list[dict[str, Any]]


def slack_client(token: str, base_url: str | None = None) -> WebClient:
    """A Web API client that waits out rate limits (429 + Retry-After) and retries."""
    client = WebClient(token=token, base_url=base_url or WebClient.BASE_URL)
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=3))
    return client


def digest(text: str, blocks: Blocks | None) -> str:
    return hashlib.sha256(json.dumps([text, blocks], sort_keys=True).encode()).hexdigest()[:16]


class Poster:
    def __init__(self, client: WebClient, engine: Engine) -> None:
        self.client, self.engine = client, engine
        self._channels: dict[str, str] = {}
        self._lock = threading.Lock()  # one post per key also across listener threads

    def recorded(self, key: str) -> SlackMessage | None:
        with Session(self.engine) as session:
            return session.exec(select(SlackMessage).where(SlackMessage.key == key)).first()

    def at(self, channel: str, ts: str) -> SlackMessage | None:
        """The recorded message at (channel id, ts): what a reaction or a click points at."""
        with Session(self.engine) as session:
            return session.exec(select(SlackMessage).where(
                SlackMessage.channel == channel, SlackMessage.ts == ts)).first()

    def post(self, key: str, channel: str, text: str, blocks: Blocks | None = None, *,
             kind: str, thread_ts: str | None = None, issue_id: int | None = None,
             investigation_id: int | None = None) -> SlackMessage:
        """Post once per key; a key already recorded returns its message unposted."""
        with self._lock:
            found = self.recorded(key)
            if found is not None:
                return found
            response = self.client.chat_postMessage(
                channel=self.channel_id(channel), text=text, blocks=blocks, thread_ts=thread_ts,
                unfurl_links=False, unfurl_media=False)
            return self._store(SlackMessage(
                key=key, kind=kind, channel=response["channel"], ts=response["ts"],
                thread_ts=thread_ts, issue_id=issue_id, investigation_id=investigation_id,
                digest=digest(text, blocks)))

    def update(self, key: str, text: str, blocks: Blocks | None = None, *,
               kind: str | None = None) -> SlackMessage | None:
        """Edit the message recorded under `key`; unchanged content sends nothing. `kind`
        re-labels what the message now is (a card that became a pointer, and back)."""
        found = self.recorded(key)
        if found is None:
            return None
        new, kind = digest(text, blocks), kind or found.kind
        if (new, kind) == (found.digest, found.kind):
            return found
        if new != found.digest:
            self.client.chat_update(channel=found.channel, ts=found.ts, text=text,
                                    blocks=blocks or [])
        with Session(self.engine) as session:
            row = session.get(SlackMessage, found.id)
            assert row is not None
            row.digest, row.kind, row.updated_at = new, kind, utcnow()
            session.add(row)
            session.commit()
            session.refresh(row)
            return row

    def record(self, key: str, channel: str, ts: str, *, kind: str,
               thread_ts: str | None = None, issue_id: int | None = None,
               investigation_id: int | None = None) -> SlackMessage:
        """Remember a message posted another way (a stream, a file upload)."""
        with self._lock:
            return self.recorded(key) or self._store(SlackMessage(
                key=key, kind=kind, channel=channel, ts=ts, thread_ts=thread_ts,
                issue_id=issue_id, investigation_id=investigation_id))

    def channel_id(self, channel: str) -> str:
        """A channel's id from '#name' or 'name'; an id (C…, D…, G…) is returned as is."""
        name = channel.lstrip("#")
        if not channel.startswith("#") and name[:1] in "CDG" and name.upper() == name:
            return channel
        if name not in self._channels:
            self._channels.update(self._list_channels())
        if name not in self._channels:
            raise SleuthError(f"no channel #{name} in the Slack workspace: create it, invite the "
                              "bot, or change intake.grouping.default_channel / the dbt owner")
        return self._channels[name]

    def _list_channels(self) -> dict[str, str]:
        found: dict[str, str] = {}
        # Public channels only: listing private ones needs groups:read. A private channel is
        # named by its id (C…) in config or dbt meta instead.
        for page in self.client.conversations_list(types="public_channel",
                                                   exclude_archived=True, limit=200):
            found.update({c["name"]: c["id"] for c in page["channels"]})
        return found

    def _store(self, row: SlackMessage) -> SlackMessage:
        with Session(self.engine) as session:
            session.add(row)
            try:
                session.commit()
            except IntegrityError:  # another process recorded the key first: keep theirs
                session.rollback()
                log.warning("message %s was recorded twice; keeping the first", row.key)
                found = self.recorded(row.key)
                assert found is not None
                return found
            session.refresh(row)
            return row
