"""Debian's headless Chromium, driven by Playwright (no browser download): the desk's and the
reports' browser tests. Without /usr/bin/chromium a test is skipped, unless EOB_REQUIRE_BROWSER
says this machine must run them (CI does)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def browser_or_skip(what: str = "the browser tests") -> None:
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} is missing (apt-get install chromium): {what} are skipped"
    if os.environ.get("EOB_REQUIRE_BROWSER"):
        pytest.fail(message + " — but EOB_REQUIRE_BROWSER demands them")
    pytest.skip(message)


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium browser, closed afterwards (skips the test without one)."""
    browser_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
