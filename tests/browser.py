"""Headless Chromium for the demo tests: Debian's browser, driven by Playwright.

Playwright drives the system's Chromium (``/usr/bin/chromium``, or the
``CHROMIUM`` environment variable): ``playwright install`` and its browser
downloads are never needed. Without Chromium or the ``playwright`` package the
``browser`` fixture (tests/conftest.py) skips its tests, except under CI
(``CI`` set), where they fail.
"""

from __future__ import annotations

import os

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    sync_playwright = expect = None

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # containers and root: no user namespaces for the sandbox
    "--disable-gpu",
    "--disable-dev-shm-usage",  # a small /dev/shm (containers) must not crash renderers
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 15_000  # any single wait in the browser
if expect is not None:
    expect.set_options(timeout=TIMEOUT_MS)


def browser_problem() -> str | None:
    if sync_playwright is None:
        return "the playwright package is not installed (pip install playwright; no 'playwright install' needed)"
    if not os.access(CHROMIUM, os.X_OK):
        return f"Chromium is not installed at {CHROMIUM} (apt-get install chromium, or set CHROMIUM)"
    return None
