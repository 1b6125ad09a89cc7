"""Closing an issue: its status, a one-line resolution, and what issue memory keeps of it.

Memory is what the next investigation's `search_memory` finds: the summary, root cause and
fix of the issue's latest report when it has one (else its title), and the human's
resolution line, which is the outcome that matters most. A recurrence of the same problem
(same fingerprint) replaces its memory row rather than adding a twin.
"""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot.config import Settings
from bot.errors import SleuthError
from bot.intake.runtime import IssueVectors, open_issue_index
from bot.store.models import Investigation, Issue, IssueStatus, Report, utcnow
from bot.vectors.index import open_index
from bot.world.memory import TABLE, IssueMemory


def resolve_issue(settings: Settings, engine: Engine, issue_id: int, resolution: str) -> Issue:
    """Mark the issue resolved with `resolution`, forget it among open issues, remember it."""
    if not resolution.strip():
        raise SleuthError("say in one line how the issue was resolved (--note)")
    issue = mark_resolved(settings, engine, issue_id, resolution.strip())
    with Session(engine) as session:
        report = _latest_report(session, issue_id)
    body = report.body if report is not None else {}
    cause = body.get("root_cause") or {}
    IssueMemory(open_index(settings, TABLE)).remember(
        issue.fingerprint,
        summary=body.get("summary") or issue.title,
        root_cause=" · ".join(str(v) for v in (cause.get("node"), cause.get("category"),
                                                cause.get("explanation")) if v) or "not stated",
        fix="; ".join(body.get("fix_steps") or []) or issue.resolution,
        fingerprint=issue.fingerprint,
        outcome=issue.resolution,
    )
    return issue


def mark_resolved(settings: Settings, engine: Engine, issue_id: int,
                  resolution: str | None = None) -> Issue:
    """Resolved now, out of the open issues; memory waits for the resolution line
    (a :white_check_mark: in Slack resolves first and asks for the line after)."""
    with Session(engine) as session:
        issue = session.get(Issue, issue_id)
        if issue is None:
            raise SleuthError(f"no issue {issue_id} (`sleuth issues --all` lists them)")
        if issue.status != IssueStatus.resolved:
            issue.status, issue.resolved_at = IssueStatus.resolved, utcnow()
        issue.resolution = resolution or issue.resolution
        session.add(issue)
        session.commit()
        session.refresh(issue)
    IssueVectors(open_issue_index(settings)).forget(issue_id)
    return issue


def _latest_report(session: Session, issue_id: int) -> Report | None:
    return session.exec(
        select(Report).join(Investigation, col(Investigation.id) == col(Report.investigation_id))
        .where(Investigation.issue_id == issue_id).order_by(col(Report.created_at).desc())
    ).first()
