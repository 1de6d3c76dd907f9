"""GET /ui and its files: no auth, the right content types, validators and a strict
Content-Security-Policy (the page loads nothing from anywhere but the gateway)."""

from __future__ import annotations

import re

import httpx

from gateway.ui import assets


def test_the_page_and_its_files_load_without_a_key(console_gateway: str) -> None:
    page = httpx.get(f"{console_gateway}/ui")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["cache-control"] == "no-cache"
    assert page.headers["x-content-type-options"] == "nosniff"
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert httpx.get(f"{console_gateway}/ui/").text == page.text
    linked = re.findall(r'(?:src|href)="/ui/([^"]+)"', page.text)
    assert {"app.js", "style.css"} <= set(linked)
    for name in assets():
        if name.endswith(".js"):  # every module the page imports is served as JavaScript
            script = httpx.get(f"{console_gateway}/ui/{name}")
            assert script.status_code == 200
            assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    style = httpx.get(f"{console_gateway}/ui/style.css")
    assert style.headers["content-type"] == "text/css; charset=utf-8"
    assert "http://" not in page.text and "https://" not in page.text  # no CDN


def test_a_browser_revalidates_with_the_etag(console_gateway: str) -> None:
    first = httpx.get(f"{console_gateway}/ui/app.js")
    again = httpx.get(f"{console_gateway}/ui/app.js",
                      headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    changed = httpx.get(f"{console_gateway}/ui/app.js", headers={"If-None-Match": '"old"'})
    assert changed.status_code == 200 and changed.content == first.content


def test_unknown_files_are_a_json_404(console_gateway: str) -> None:
    for path in ("/ui/nope.js", "/ui/..%2Fapp.py", "/ui/static/app.js"):
        answer = httpx.get(f"{console_gateway}{path}")
        assert answer.status_code == 404, path
        assert answer.json()["error"]["code"] == "not_found"
