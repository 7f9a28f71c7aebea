"""Browser-test helpers that work under the site's Content-Security-Policy."""

from __future__ import annotations

import time

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page


def wait_until(page: Page, expression: str, *, timeout: float = 5000) -> object:
    """Poll ``expression`` in the page until it is truthy (ms ``timeout``); returns its value.

    Playwright's ``wait_for_function`` compiles its predicate with ``eval`` inside the page,
    which the site's CSP (no 'unsafe-eval') rightly refuses; ``page.evaluate`` does not.
    """
    deadline = time.monotonic() + timeout / 1000
    while True:
        try:
            value = page.evaluate(expression)
        except PlaywrightError as exc:  # the page navigated mid-poll: ask the new one
            if "context was destroyed" not in str(exc):
                raise
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} ms waiting for: {expression}")
        time.sleep(0.03)
