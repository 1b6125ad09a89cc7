from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, select

from bot.errors import SleuthError
from bot.store import open_store
from bot.store.models import Approval, Investigation, Issue, Report, Signal, TraceStep


def test_open_creates_the_folder_and_every_table(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'deep' / 'sleuth.db'}")
    tables = set(inspect(engine).get_table_names())
    assert {"signal", "issue", "investigation", "tracestep", "report", "casefile",
            "feedback", "approval", "alembic_version"} <= tables


def test_migrations_match_the_models(tmp_path: Path) -> None:
    """A model changed without a migration shows up here as a diff."""
    engine = open_store(f"sqlite:///{tmp_path / 's.db'}")
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert diff == []


def test_reopening_keeps_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    now = datetime.now(UTC)
    with Session(open_store(url)) as session:
        session.add(Issue(fingerprint="fp1", title="t", severity="SEV2", asset="model.x",
                          channel="#data", first_seen=now, last_seen=now))
        session.commit()
    with Session(open_store(url)) as session:
        assert session.exec(select(Issue.fingerprint)).all() == ["fp1"]


def test_constraints_hold(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 's.db'}")
    now = datetime.now(UTC)
    with Session(engine) as session:
        session.add(Signal(source="dbt", kind="test_failed", asset="test.x", title="t",
                           dedup_key="k", observed_at=now))
        session.commit()
        session.add(Signal(source="dbt", kind="test_failed", asset="test.x", title="t",
                           dedup_key="k", observed_at=now))
        with pytest.raises(IntegrityError):  # the same observation is stored once
            session.commit()
        session.rollback()
        session.add(TraceStep(investigation_id=999, seq=1, agent="orchestrator", kind="plan",
                              summary="s"))
        with pytest.raises(IntegrityError):  # foreign keys are enforced on SQLite too
            session.commit()


def test_approval_request_key_makes_a_double_click_count_once(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 's.db'}")
    with Session(engine) as session:
        inv = Investigation(question="why", trigger="cli", policy="offline")
        session.add(inv)
        session.commit()
        report = Report(investigation_id=inv.id, severity="SEV2", body={"title": "x"})
        session.add(report)
        session.commit()
        for _ in range(2):
            session.add(Approval(report_id=report.id, action="create_pr", user_id="U1",
                                 allowed=True, reason="approver", request_key="click-1"))
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
        assert len(session.exec(select(Approval)).all()) == 1
        assert session.get(Report, report.id).body == {"title": "x"}


def test_unreachable_store_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(SleuthError, match="cannot open the store"):
        open_store(f"sqlite:///{blocker / 'sub' / 's.db'}")
