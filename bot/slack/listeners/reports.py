"""A report's buttons: Create PR (approvers only, confirmed in a modal, audited) and 👍/👎.

The PR subagent is not built yet: a confirmed approval is recorded and the thread says what
would happen, and that nothing was changed.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from agents.report import Report as ReportBody
from bot.slack import approvals
from bot.slack.app import Bot
from bot.slack.blocks import (
    ACTION_CREATE_PR,
    ACTION_FEEDBACK_DOWN,
    ACTION_FEEDBACK_UP,
    VIEW_CONFIRM_PR,
    pr_confirm_modal,
)
from bot.slack.listeners.common import action_value, ephemeral
from bot.store.models import Feedback, Report

log = logging.getLogger(__name__)
CREATE_PR = "create_pr"


def register(app: App, bot: Bot) -> None:
    @app.action(ACTION_CREATE_PR)
    def create_pr(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        report_id, user = action_value(body), body["user"]["id"]
        verdict = bot.approvers.judge(user)
        if not verdict.allowed:
            return _refuse(bot, client, body, report_id, user, verdict)
        report = load_report(bot, report_id)
        if report is None or not report.code_change.needed:
            return ephemeral(client, body, "This report recommends no code change.")
        message = body.get("message") or {}
        client.views_open(trigger_id=body["trigger_id"], view=pr_confirm_modal(
            report, report_id, channel=body["channel"]["id"],
            thread_ts=message.get("thread_ts") or message.get("ts") or ""))

    @app.view(VIEW_CONFIRM_PR)
    def confirm(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        ack()
        meta = json.loads(view["private_metadata"])
        report_id, user = int(meta["report_id"]), body["user"]["id"]
        verdict = bot.approvers.judge(user)  # again: the modal may outlive a change of config
        place = {"channel": {"id": meta["channel"]}, "user": {"id": user},
                 "message": {"thread_ts": meta["thread_ts"]}}
        if not verdict.allowed:
            return _refuse(bot, client, place, report_id, user, verdict, f"view:{view['id']}")
        approval, new = approvals.record(
            bot.engine, report_id=report_id, action=CREATE_PR, user=user, verdict=verdict,
            request_key=approvals.approval_key(CREATE_PR, report_id))
        if not new:
            return ephemeral(client, place, f"<@{approval.user_id}> already approved this "
                                            "change; it counts once.")
        report = load_report(bot, report_id)
        bot.poster.post(f"approval:{report_id}", meta["channel"], _approved_text(user, report),
                        kind="notice", thread_ts=meta["thread_ts"])

    @app.action(ACTION_FEEDBACK_UP)
    def thumbs_up(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        rate(bot, action_value(body), body["user"]["id"], +1)
        ephemeral(client, body, "Thanks: recorded :+1: on this report.")

    @app.action(ACTION_FEEDBACK_DOWN)
    def thumbs_down(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        rate(bot, action_value(body), body["user"]["id"], -1)
        ephemeral(client, body, "Thanks: recorded :-1:. Reports rated down become eval cases; "
                                "say in the thread what was wrong.")


def rate(bot: Bot, report_id: int, user: str, rating: int) -> None:
    """One rating per person and report; a second click changes it."""
    with Session(bot.engine) as session:
        found = session.exec(select(Feedback).where(Feedback.report_id == report_id,
                                                    Feedback.user_id == user)).first()
        row = found or Feedback(report_id=report_id, user_id=user, rating=rating)
        row.rating = rating
        session.add(row)
        try:
            session.commit()
        except IntegrityError:  # the same person's other click landed first
            session.rollback()


def load_report(bot: Bot, report_id: int) -> ReportBody | None:
    with Session(bot.engine) as session:
        row = session.get(Report, report_id)
    return ReportBody.model_validate(row.body) if row is not None else None


def _refuse(bot: Bot, client: WebClient, body: dict[str, Any], report_id: int, user: str,
            verdict: approvals.Verdict, click: str | None = None) -> None:
    click = click or str((body.get("actions") or [{}])[0].get("action_ts"))
    approvals.record(bot.engine, report_id=report_id, action=CREATE_PR, user=user,
                     verdict=verdict, request_key=f"{CREATE_PR}:{report_id}:refused:{user}:"
                                                  f"{click}")
    ephemeral(client, body, f":no_entry: Only approvers may create a pull request ({verdict.reason})."
                            " Your click is recorded in the audit trail.")


def _approved_text(user: str, report: ReportBody | None) -> str:
    files = ", ".join(f"`{f}`" for f in (report.code_change.files if report else [])) or "—"
    return (f":white_check_mark: <@{user}> approved a pull request for this change ({files}). "
            "The PR subagent is not built yet, so no pull request was opened and nothing was "
            "changed: the approval is recorded. Once it exists, this approval makes it branch "
            "from the default branch, apply the change sketched in the report, run dbt's "
            "build on the touched models and open the pull request here.")
