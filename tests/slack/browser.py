"""A real browser for the workspace page: Playwright (sync API) driving an installed Chromium.

tests/slack/conftest.py registers the `browser_page` and `chromium` fixtures. Nothing is downloaded: Playwright's own
browser builds are not used, the system's Chromium is (`scripts/ensure-chromium` installs
Debian's). Without Playwright or a Chromium the tests skip and say why.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
# Headless, and quiet on the network: the page is served locally and needs nothing else.
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync"]
# The machine is shared and slow at times; Playwright waits on the DOM up to this long.
TIMEOUT_MS = 20_000


def find_chromium() -> str | None:
    """$SLEUTH_CHROMIUM when it names an executable, else the first Chromium on PATH."""
    override = os.environ.get("SLEUTH_CHROMIUM")
    if override:
        found = shutil.which(override)
        return found if found else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session", name="chromium")
def chromium_fixture() -> Iterator[Any]:
    """One browser for the session; each test gets its own context (cookies, storage)."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    path = find_chromium()
    if path is None:
        where = os.environ.get("SLEUTH_CHROMIUM")
        pytest.skip(f"SLEUTH_CHROMIUM={where} is not an executable" if where else
                    "no Chromium on PATH (chromium, chromium-browser, google-chrome): run "
                    "scripts/ensure-chromium or set SLEUTH_CHROMIUM")
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=path, args=LAUNCH_ARGS)
        except Error as exc:
            pytest.skip(f"Chromium at {path} did not start: {str(exc).splitlines()[0]}")
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(name="browser_page")
def browser_page_fixture(chromium: Any) -> Iterator[Any]:
    """A fresh page (playwright.sync_api.Page) with DOM waits of up to TIMEOUT_MS."""
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    context = chromium.new_context(accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        yield page
    finally:
        context.close()


def open_channel(page: Any, url: str, channel: str, thread_ts: str | None = None) -> None:
    """Load the page at `url` showing `channel` (an id), with the thread `thread_ts` open."""
    page.goto(f"{url}#/{channel}" + (f"/{thread_ts}" if thread_ts else ""))
    page.wait_for_selector(f'[data-testid=channel-header][data-channel-id="{channel}"]')


__all__ = ["browser_page_fixture", "chromium_fixture", "find_chromium", "open_channel"]
