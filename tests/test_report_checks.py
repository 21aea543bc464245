"""Checks on a rendered report page, shared by the report tests (HTML5 validity, no network), and their own tests."""

from __future__ import annotations

import re

import html5lib

# What a browser would fetch: src/href/xlink:href/srcset/action/poster/data attributes
# pointing anywhere but the page itself, CSS url() and @import, <link>, <script>, <iframe>.
_ATTRIBUTE_URL = re.compile(r"""\b(?:src|href|xlink:href|srcset|action|poster|data|formaction)\s*=\s*["']?\s*([^"'\s>]+)""",
                            re.I)
_CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")]+)", re.I)
_ALLOWED_LOCAL = re.compile(r"^(#|\.\./index\.html$|[\w.-]+/index\.html$|report\.json$|index\.html$)")


def html5_errors(text: str) -> list[str]:
    """Parse errors an HTML5 parser reports for the page (empty when valid)."""
    parser = html5lib.HTMLParser(strict=False, namespaceHTMLElements=False)
    parser.parse(text)
    return [f"line {line}:{col}: {code} {data}" for (line, col), code, data in parser.errors]


def external_references(text: str) -> list[str]:
    """Every reference that would make a browser load something other than this page's anchors
    and the archive's sibling files."""
    found = []
    for url in _ATTRIBUTE_URL.findall(text) + _CSS_URL.findall(text):
        if not _ALLOWED_LOCAL.match(url):
            found.append(url)
    if re.search(r"@import", text, re.I):
        found.append("@import")
    for tag in ("script", "link", "iframe", "img", "object", "embed", "video", "audio"):
        if re.search(rf"<{tag}\b", text, re.I):
            found.append(f"<{tag}>")
    return found


def test_the_reference_scanner_finds_what_a_browser_would_fetch():
    page = ('<img src="http://x/a.png"><p style="background:url(https://x/b.png)"></p>'
            '<style>@import "c.css";</style><a href="#top">ok</a><a href="report.json">ok</a>')
    assert external_references(page) == ["http://x/a.png", "https://x/b.png", "@import", "<img>"]


def test_the_html5_check_reports_parse_errors():
    assert html5_errors("<!DOCTYPE html><html><head><title>t</title></head><body><p>ok</p></body></html>") == []
    assert html5_errors("<p>no doctype</p></div>")
