"""Headless Chromium (Debian's `chromium` package) driven by Playwright's Python sync API.

Never `playwright install`: the browser is the system's, launched through `executable_path`,
so the tests run offline. A missing browser fails the test, naming the package.

`Watch` records, for every page of a browser context, each request (and aborts any whose host
is not loopback, so nothing leaves the machine even by mistake), console messages, dialogs
(dismissed: an `alert(1)` that ran would show up here) and uncaught page errors.
`accessibility_problems` checks what the issue asks of every page: each form field has a
label, each table has header cells, each status colour has a word beside it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ("--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync")
LOOPBACK = "127.0.0.1"


def launch(playwright):
    """The system Chromium, headless; fails (never skips) when the package is missing."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} not found: install Debian's 'chromium' package (make test-packages)")
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=list(CHROMIUM_ARGS))


@dataclass
class Watch:
    """What the pages of one browser context did: requests, console lines, dialogs, errors."""

    urls: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def attach(self, context) -> None:
        context.route("**/*", self._route)
        context.on("page", self._on_page)

    def _route(self, route) -> None:
        url = route.request.url
        self.urls.append(url)
        if urlsplit(url).hostname != LOOPBACK:
            self.blocked.append(url)
            route.abort()
        else:
            route.continue_()

    def _on_page(self, page) -> None:
        page.on("console", lambda message: self.console.append(f"{message.type}: {message.text}"))
        page.on("dialog", self._on_dialog)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))

    def _on_dialog(self, dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def off_loopback(self) -> list[str]:
        """Every URL requested whose host is not 127.0.0.1 (blocked, but it was asked for)."""
        return [url for url in self.urls if urlsplit(url).hostname != LOOPBACK]


# Run in the page: what a screen-reader user or a colour-blind reader would miss.
_ACCESSIBILITY = """() => {
  const problems = [];
  const named = (el) => (el.getAttribute('aria-label') || '').trim() || el.getAttribute('aria-labelledby')
      || Array.from(el.labels || []).some((label) => label.textContent.trim());
  for (const el of document.querySelectorAll('input, textarea, select')) {
    if (['hidden', 'submit', 'button', 'reset'].includes(el.type)) continue;
    if (!named(el)) problems.push('form field without a label: ' + (el.name || el.id || el.outerHTML.slice(0, 80)));
  }
  for (const button of document.querySelectorAll('button')) {
    if (!(button.textContent.trim() || (button.getAttribute('aria-label') || '').trim()))
      problems.push('button without a name');
  }
  for (const table of document.querySelectorAll('table')) {
    if (!table.querySelector('th')) problems.push('table without header cells: ' + (table.id || table.className));
  }
  for (const el of document.querySelectorAll('[class*="status-"]')) {
    if (!el.textContent.trim()) problems.push('a status colour without a word: ' + el.className);
  }
  return problems;
}"""


def accessibility_problems(page) -> list[str]:
    return page.evaluate(_ACCESSIBILITY)


def screenshot_dir(default: Path) -> Path:
    """Where page screenshots go: $UI_SCREENSHOT_DIR (`make ui-screenshots`), else `default`."""
    directory = Path(os.environ.get("UI_SCREENSHOT_DIR") or default)
    directory.mkdir(parents=True, exist_ok=True)
    return directory
