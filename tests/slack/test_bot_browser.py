"""The bot as a person sees it in a real browser: an issue card in its channel, a click on
Investigate, and the report in the thread panel. The page is the local workspace's; the bot runs
in this process over the demo platform (tests/slack/botrig.py); the browser is Chromium via
Playwright (tests/slack/browser.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.slack.blocks import (
    ACTION_FEEDBACK_DOWN,
    ACTION_FEEDBACK_UP,
    ACTION_INVESTIGATE,
    ACTION_RESOLVE,
)
from bot.slack.workspace import APPROVER_USER_ID
from bot.store.models import Feedback, Investigation, Report
from tests.slack.botrig import start_rig
from tests.slack.browser import open_channel
from tests.slack.conftest import wait_for

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect
pytestmark = pytest.mark.slow


def test_a_click_on_the_card_shows_the_investigation_and_its_report(
        demo_platform, tmp_path: Path, browser_page) -> None:
    paths, _ = demo_platform
    rig = start_rig(paths, tmp_path / "rig", auto_investigate=None)  # the person decides
    try:
        issue_id = rig.scenario("schema_change").opened[0]
        card = rig.bot.bot.cards.card(issue_id)
        assert card is not None
        page = browser_page
        open_channel(page, rig.workspace.url, card.channel)
        shown = page.locator(f'#messages [data-testid=message][data-ts="{card.ts}"]')
        expect(shown.get_by_test_id("block-context")).to_contain_text(f"Issue #{issue_id}")
        expect(shown).to_have_attribute("data-bot", "true")

        shown.locator(f'[data-testid=button][data-action-id="{ACTION_INVESTIGATE}"]').click()
        investigation = wait_for(lambda: _investigations(rig.engine), "the investigation")[0]
        assert (investigation.issue_id, investigation.trigger) == (issue_id, "button")
        rig.bot.bot.jobs.wait(timeout=300)
        report = rig.bot.bot.poster.recorded(f"report:{investigation.id}")
        assert report is not None and report.thread_ts == card.ts
        with Session(rig.engine) as session:
            body = session.exec(select(Report).where(
                Report.investigation_id == investigation.id)).one().body

        link = shown.get_by_test_id("thread-link")
        expect(link).to_have_text(re.compile(r"\d+ replies"))
        link.click()
        thread = page.get_by_test_id("thread-messages")
        expect(page.get_by_test_id("thread-panel")).to_be_visible()
        rendered = thread.locator(f'[data-testid=message][data-ts="{report.ts}"]')
        expect(rendered.get_by_test_id("block-header")).to_contain_text(body["title"][:40])
        cause = rendered.get_by_test_id("block-section").filter(has_text=re.compile("^Root cause:"))
        expect(cause).to_contain_text(body["root_cause"]["explanation"][:60])
        for action in (ACTION_RESOLVE, ACTION_FEEDBACK_UP, ACTION_FEEDBACK_DOWN):
            expect(rendered.locator(f'[data-testid=button][data-action-id="{action}"]')
                   ).to_be_visible()
        expect(thread.get_by_test_id("file")).to_have_count(1)  # the case file

        rendered.locator(f'[data-testid=button][data-action-id="{ACTION_FEEDBACK_UP}"]').click()
        expect(thread.get_by_test_id("ephemeral-message").filter(has_text="Thanks: recorded")
               ).to_be_visible()
        with Session(rig.engine) as session:  # the page acts as the approver
            rated = session.exec(select(Feedback)).all()
        assert [(f.user_id, f.rating) for f in rated] == [(APPROVER_USER_ID, 1)]
    finally:
        rig.stop()


def _investigations(engine: Engine) -> list[Investigation]:
    with Session(engine) as session:
        return list(session.exec(select(Investigation)).all())
