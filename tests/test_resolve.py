"""Resolving an issue closes it, drops it from open-issue similarity, and teaches memory."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session

from bot.config import Settings
from bot.errors import SleuthError
from bot.intake.runtime import IssueVectors, open_issue_index
from bot.resolve import resolve_issue
from bot.store import open_store
from bot.store.models import Issue, IssueStatus
from bot.vectors.index import open_index
from bot.world.memory import TABLE, IssueMemory

NOW = datetime(2026, 11, 24, 3, tzinfo=UTC)


def test_a_resolved_issue_is_remembered_and_no_longer_open(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    engine = open_store(settings.store_url)
    with Session(engine) as session:
        issue = Issue(fingerprint="fp-orders", title="not_null(stg_orders.customer_id) failed",
                      severity="SEV2", asset="model.shop.stg_orders", channel="#data",
                      first_seen=NOW, last_seen=NOW)
        session.add(issue)
        session.commit()
        issue_id = issue.id
    assert issue_id is not None
    vectors = IssueVectors(open_issue_index(settings))
    vectors.remember(issue_id, "test failed stg_orders customer_id nulls")

    done = resolve_issue(settings, engine, issue_id, "upstream fixed the export; backfilled")

    assert done.status == IssueStatus.resolved and done.resolved_at is not None
    assert vectors.nearest("test failed stg_orders customer_id nulls", 3) == []
    [hit] = IssueMemory(open_index(settings, TABLE)).search("customer_id nulls in stg_orders", 3)
    assert hit.issue_id == "fp-orders" and hit.fix == "upstream fixed the export; backfilled"
    with pytest.raises(SleuthError, match="one line"):
        resolve_issue(settings, engine, issue_id, "  ")
