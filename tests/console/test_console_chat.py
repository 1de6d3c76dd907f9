"""Signing in (a bad key's 401 message shown, a good key kept for the tab) and the chat
playground: an answer that appears while it streams, with its usage."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.console.conftest import MASTER, sign_in, snap
from tests.fakes.openai_server import FakeOpenAI


def test_a_bad_key_is_refused_with_the_gateways_message(page: Page) -> None:
    page.goto("/ui")
    expect(page.locator("#page-signin")).to_be_visible()
    snap(page, "signin")
    page.fill("#signin-key", "sk-not-a-key")
    page.click("#signin-form button[type=submit]")
    expect(page.locator("#signin-error")).to_have_text("Incorrect API key provided.")
    expect(page.locator("#nav")).to_be_hidden()
    assert page.evaluate("sessionStorage.length") == 0


def test_a_good_key_signs_in_for_the_tab(page: Page) -> None:
    sign_in(page)
    expect(page.locator("#who-label")).to_have_text("Master key")
    expect(page.locator("#nav a[data-page=keys]")).to_be_visible()
    assert MASTER not in page.content()  # the key is in sessionStorage, not in the page
    guide = page.locator("details[data-guide=detect]")  # each tool's guide, in place
    assert "Models here: yolo" in (guide.text_content() or "")
    assert "$GATEWAY_KEY" in (guide.text_content() or "")
    page.reload()  # the tab keeps it
    expect(page.locator("#nav")).to_be_visible()
    page.click("#sign-out")
    expect(page.locator("#page-signin")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0


def test_a_streamed_answer_appears_with_its_usage(page: Page,
                                                  fake_openai_server: FakeOpenAI) -> None:
    sign_in(page, where="#chat")
    options = page.locator("#chat-model option").all_inner_texts()
    assert "gpt-slow" in options and "yolo" not in options and "whisper-1" not in options
    page.select_option("#chat-model", "gpt-slow")  # 0.2 s between chunks upstream
    page.evaluate("""() => {  // every text the answer shows, as it changes
        window.seen = [];
        new MutationObserver(() => {
            const texts = document.querySelectorAll(".msg.assistant .text");
            if (texts.length) window.seen.push(texts[texts.length - 1].textContent);
        }).observe(document.getElementById("chat-log"),
                   {subtree: true, childList: true, characterData: true});
    }""")
    page.fill("#chat-text", "tell me about streaming consoles")
    page.click("#chat-send")
    answer = page.locator(".msg.assistant").last
    expect(answer).to_have_attribute("data-done", "true")
    expect(answer.locator(".text")).to_have_text("echo: tell me about streaming consoles")
    final = "echo: tell me about streaming consoles"
    seen = [text for text in page.evaluate("window.seen") if text]
    assert len(set(seen)) >= 4, seen  # shown piece by piece, not all at the end
    assert all(final.startswith(text) for text in seen), seen
    usage = answer.locator(".usage").inner_text()
    match = re.match(r"(\d+) prompt \+ (\d+) completion = (\d+) tokens", usage)
    assert match, usage
    prompt, completion, total = map(int, match.groups())
    assert prompt > 0 and completion > 0 and total == prompt + completion
    # a second turn goes with the first in its history
    page.select_option("#chat-model", "gpt-test")
    page.fill("#chat-text", "and again")
    page.keyboard.press("Enter")
    expect(page.locator(".msg.assistant[data-done=true]")).to_have_count(2)
    expect(page.locator(".msg.assistant").last.locator(".text")).to_have_text("echo: and again")
    sent = fake_openai_server.requests[-1]
    assert [m["content"] for m in sent["messages"]] == [
        "tell me about streaming consoles", final, "and again"]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    snap(page, "chat")


def test_an_upstream_error_is_shown_in_the_answer(page: Page) -> None:
    sign_in(page, where="#chat")
    page.select_option("#chat-model", "gpt-broken")
    page.fill("#chat-text", "this fails")
    page.click("#chat-send")
    error = page.locator(".msg.assistant .error")
    expect(error).to_contain_text("fake upstream error 400")
    expect(page.locator("#chat-send")).to_be_enabled()  # ready for the next message
