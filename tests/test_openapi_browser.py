"""/docs rendered by a real browser (Debian's chromium, driven by Playwright): Swagger UI draws
every operation of /openapi.json, and the page asks nothing of any other origin."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

playwright = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = shutil.which("chromium")
    assert chromium is not None, "apt-get install chromium (scripts/test does)"
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium,
                                         args=["--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


def test_docs_render_every_operation_offline(gateway: str, browser: Any) -> None:
    doc = httpx.get(f"{gateway}/openapi.json").json()
    operations = sum(len(item) for item in doc["paths"].values())
    page = browser.new_page()
    elsewhere: list[str] = []
    errors: list[str] = []

    def route(request_route: Any) -> None:
        if request_route.request.url.startswith(gateway):
            request_route.continue_()
        else:  # no internet here anyway: a CDN asset would fail; record it and refuse
            elsewhere.append(request_route.request.url)
            request_route.abort()

    page.route("**/*", route)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(f"{gateway}/docs")
    page.wait_for_selector(".opblock", timeout=20_000)
    assert page.locator(".opblock").count() == operations
    assert "AI gateway" in page.locator(".info .title").inner_text()
    assert page.locator(".opblock-summary-path[data-path='/v1/chat/completions']").count() == 1
    page.locator(".opblock-summary-path[data-path='/v1/chat/completions']").click()
    page.wait_for_selector(".opblock.is-open .responses-table")
    statuses = page.locator(".opblock.is-open .response-col_status").all_inner_texts()
    assert {"200", "400", "401", "429", "502"} <= {s.split()[0] for s in statuses if s}
    assert page.locator(".btn.authorize").count() == 1
    assert elsewhere == [] and errors == []
    page.close()
