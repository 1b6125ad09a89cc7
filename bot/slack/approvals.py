"""Who may confirm an action that changes code, and the audit trail of every click on one.

Approvers are user ids from config and the members of a user group (read with
`usergroups.users.list`, cached a few minutes). Every confirmation, allowed or refused, is
stored as an `Approval`; an allowed one is keyed by the report, so double clicks and Slack's
retries approve once.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from bot.store.models import Approval

log = logging.getLogger(__name__)
GROUP_TTL = 300.0


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str


class Approvers:
    def __init__(self, client: WebClient, users: list[str], group: str | None,
                 ttl: float = GROUP_TTL) -> None:
        self.client, self.users, self.group, self.ttl = client, set(users), group, ttl
        self._members: tuple[float, set[str]] | None = None
        self._lock = threading.Lock()

    def judge(self, user: str) -> Verdict:
        if user in self.users:
            return Verdict(True, "listed in slack.approvers")
        if self.group and user in self._group_members():
            return Verdict(True, f"member of user group {self.group}")
        if not self.users and not self.group:
            return Verdict(False, "no approvers are configured (slack.approvers, "
                                  "slack.approver_group)")
        return Verdict(False, "not an approver (slack.approvers, slack.approver_group)")

    def _group_members(self) -> set[str]:
        with self._lock:
            if self._members is None or time.monotonic() - self._members[0] > self.ttl:
                try:
                    users = self.client.usergroups_users_list(usergroup=self.group)["users"]
                except SlackApiError as exc:  # refuse rather than guess; say why in the log
                    log.error("cannot read user group %s: %s", self.group,
                              exc.response.get("error"))
                    return set()
                self._members = (time.monotonic(), set(users))
            return self._members[1]


def approval_key(action: str, report_id: int) -> str:
    return f"{action}:{report_id}"


def record(engine: Engine, *, report_id: int, action: str, user: str, verdict: Verdict,
           request_key: str) -> tuple[Approval, bool]:
    """Store the click; (the approval that stands, whether this click made it). An allowed
    approval is one per report and action: a second one returns the first."""
    row = Approval(report_id=report_id, action=action, user_id=user, allowed=verdict.allowed,
                   reason=verdict.reason, request_key=request_key)
    with Session(engine) as session:
        session.add(row)
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            first = session.exec(select(Approval).where(
                Approval.request_key == request_key)).one()
            return first, False
        session.refresh(row)
        return row, True
