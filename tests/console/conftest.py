"""The web console in a real browser: Playwright driving Debian's chromium (Playwright's own
browser download cannot work here) against a live ``gateway serve`` process with the fake
OpenAI upstream, the session's redis-server and the real tool backends (ocr, yolo, whisper).

One gateway and one browser for the package (stopped once its tests are done); each test gets
a fresh browser context (a fresh sessionStorage, so nobody is signed in). Screenshots go to
$GATEWAY_TEST_ARTIFACTS, else tests/artifacts/console/ (git-ignored), and one of the page as
it was whenever a test fails."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.serve import GatewayProcess, RedisServer

MASTER = "sk-console-master"
ARTIFACTS = Path(os.environ.get("GATEWAY_TEST_ARTIFACTS")
                 or Path(__file__).resolve().parent.parent / "artifacts") / "console"


def console_config(upstream: str) -> dict[str, Any]:
    chat = {"provider": "openai-compatible", "api_base": upstream, "api_key": "sk-upstream",
            "retries": 0, "input_cost_per_mtok": 150, "output_cost_per_mtok": 600}
    return {"jobs": {"chunk_tokens": 200}, "models": [
        {"name": "gpt-test", "model": "echo", **chat},
        {"name": "gpt-slow", "model": "slow-stream", **chat},
        {"name": "gpt-broken", "model": "error-400", **chat},
        {"name": "reader", "model": "json-answer", **chat},
        {"name": "ocr", "provider": "ocr"},
        {"name": "yolo", "provider": "yolo", "threads": 1},
        {"name": "whisper-1", "provider": "whisper", "beam_size": 1, "language": "en"},
    ]}


@pytest.fixture(scope="package")
def console_gateway(tmp_path_factory: pytest.TempPathFactory, fake_openai_server: FakeOpenAI,
                    redis_server: RedisServer) -> Iterator[str]:
    redis_server.flush()
    config = tmp_path_factory.mktemp("console") / "models.yaml"
    config.write_text(json.dumps(console_config(fake_openai_server.url)))  # type: ignore[attr-defined]
    process = GatewayProcess(str(config), {"GATEWAY_MASTER_KEY": MASTER,
                                           "REDIS_URL": redis_server.url})
    try:
        yield process.wait_ready().url
    finally:
        process.stop()


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("the console tests need Debian's chromium: apt-get install chromium")
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=args)
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser, console_gateway: str) -> Iterator[BrowserContext]:
    made = browser.new_context(base_url=console_gateway, viewport={"width": 1100, "height": 760},
                               permissions=["clipboard-read", "clipboard-write"],
                               reduced_motion="reduce")  # screenshots without transitions
    made.set_default_timeout(30_000)
    yield made
    made.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


FAILED = pytest.StashKey[bool]()


@pytest.fixture
def page(context: BrowserContext, request: pytest.FixtureRequest) -> Iterator[Page]:
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    if request.node.stash.get(FAILED, False):  # what the page showed when the test failed
        snap(opened, f"failed-{request.node.name}")
    assert not errors, f"the page threw: {errors}"


def sign_in(page: Page, key: str = MASTER, where: str = "") -> None:
    page.goto(f"/ui{where}")
    page.fill("#signin-key", key)
    page.click("#signin-form button[type=submit]")
    expect(page.locator("#nav")).to_be_visible()


def snap(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
