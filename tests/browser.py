"""What the browser tests share: Debian's Chromium, the flags it needs here, and the skip-or-fail rule.

Playwright for Python drives Debian's package (`apt-get install chromium`; `make test` installs it as root):
Playwright's own browser download cannot work offline.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("WORKBOOK_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# Flags for a sandbox without a network: no background connections, no first-run UI; --no-sandbox because CI is root.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]  # fmt: skip
SHOTS = Path(__file__).resolve().parent.parent / "build" / "browser"


def skip_or_fail(reason: str) -> None:
    """Skip with the reason on a developer's machine; under CI a missing browser is a failure."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run the browser test: `make test` installs Chromium and Playwright)")
    pytest.skip(reason)


def playwright() -> Iterator[Any]:
    """Playwright started, or the test skipped (failed under CI) when it or Chromium is missing."""
    try:
        from playwright.sync_api import sync_playwright as start
    except ImportError:
        skip_or_fail("Playwright for Python is not installed")
    if not Path(CHROMIUM).exists():
        skip_or_fail(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    with start() as started:
        yield started


def chromium(started: Any) -> Iterator[Any]:
    browser = started.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    try:
        yield browser
    finally:
        browser.close()
