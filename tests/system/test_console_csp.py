"""The console's files keep to its Content-Security-Policy (no 'unsafe-inline': no inline script,
style or event handler) and to how it treats user text and secrets (textContent, never
innerHTML; the page script never touches Web Storage, where a secret could outlive the page)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CONSOLE = Path(__file__).resolve().parents[2] / "devserver" / "console"
PAGES = sorted(CONSOLE.glob("*.html"))
SCRIPTS = sorted(CONSOLE.glob("*.js"))


def test_the_console_has_pages_and_scripts() -> None:
    assert {page.name for page in PAGES} >= {"index.html", "docs.html"}
    assert {script.name for script in SCRIPTS} >= {"app.js", "auth.js", "docs.js"}


@pytest.mark.parametrize("page", PAGES, ids=lambda path: path.name)
def test_no_inline_script_style_or_handler(page: Path) -> None:
    html = page.read_text()
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []  # every script is a file
    assert "<style" not in html
    assert re.findall(r"\sstyle\s*=", html) == []
    assert re.findall(r"\son[a-z]+\s*=", html) == []
    assert "javascript:" not in html


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_user_text_goes_in_as_text(script: Path) -> None:
    code = script.read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in code, f"{script.name} uses {sink}"
    assert not re.search(r"setAttribute\(\s*[\"']style", code)
    assert not re.search(r"setAttribute\(\s*[\"']on", code)


def test_the_page_script_never_uses_web_storage() -> None:
    """auth.js keeps a sign-in under way in sessionStorage (never a token); app.js, which holds the
    secret on screen, stores nothing."""
    code = (CONSOLE / "app.js").read_text()
    assert "localStorage" not in code and "sessionStorage" not in code
