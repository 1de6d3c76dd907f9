"""The master key's pages: virtual keys (created, their secret copied once and then gone,
revoked) and the usage and spend charts; and a virtual key, which sees neither the keys page
nor anybody's usage but its own."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import MASTER, sign_in, snap

ADMIN = {"Authorization": f"Bearer {MASTER}"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def chat(url: str, key: str, model: str, text: str) -> None:
    answer = httpx.post(f"{url}/v1/chat/completions", headers=bearer(key),
                        json={"model": model, "messages": [{"role": "user", "content": text}]})
    assert answer.status_code == 200, answer.text


def test_a_key_is_made_copied_once_and_revoked(page: Page, console_gateway: str) -> None:
    sign_in(page, where="#keys")
    page.fill("#key-name", "console-team")
    page.fill("#key-rpm", "30")
    page.select_option("#key-models", ["gpt-test"])
    page.click("#key-form button[type=submit]")
    secret_box = page.locator("#key-secret-value")
    expect(secret_box).to_contain_text("sk-")
    secret = secret_box.inner_text()
    row = page.locator("#key-table tbody tr", has_text="console-team")
    expect(row).to_contain_text("gpt-test")
    expect(row.locator("td").nth(3)).to_have_text("30")
    snap(page, "keys")
    page.click("#key-copy")
    expect(page.locator("#key-copy")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    page.click("#key-done")
    expect(page.locator("#key-secret")).to_be_hidden()
    assert secret not in page.content()  # shown once: gone from the page
    page.reload()
    expect(row).to_be_visible()
    assert secret not in page.content()
    # the copied key works, for its model only
    models = httpx.get(f"{console_gateway}/v1/models", headers=bearer(secret))
    assert [m["id"] for m in models.json()["data"]] == ["gpt-test"]
    key_id = row.get_attribute("data-id")
    row.locator("button.revoke").click()
    expect(row.locator("button.revoke")).to_have_text("Confirm revoke")
    row.locator("button.revoke").click()
    expect(page.locator(f"#key-table tbody tr[data-id='{key_id}']")).to_have_count(0)
    refused = httpx.get(f"{console_gateway}/v1/models", headers=bearer(secret))
    assert refused.status_code == 401


def test_usage_and_spend_charts_per_day_key_and_model(page: Page, console_gateway: str) -> None:
    made = httpx.post(f"{console_gateway}/v1/keys", headers=ADMIN, json={"name": "charts"}).json()
    for _ in range(3):
        chat(console_gateway, made["key"], "gpt-test", "one two three four five six")
    chat(console_gateway, MASTER, "reader", "hello")
    expected = httpx.get(f"{console_gateway}/v1/usage", headers=ADMIN).json()
    sign_in(page, where="#usage")
    day = page.locator("#chart-day rect.bar")
    expect(day.first).to_be_attached()
    today = expected["to"]
    tokens_today = sum(r["total_tokens"] for r in expected["data"] if r["date"] == today)
    expect(page.locator(f"#chart-day rect.bar[data-label='{today}']")).to_have_attribute(
        "data-value", str(tokens_today))
    assert day.count() == 30  # one bar per day of the default 30 days
    per_key = page.locator("#chart-key rect.bar[data-label^='charts']")
    made_tokens = sum(r["total_tokens"] for r in expected["data"] if r["key_id"] == made["id"])
    expect(per_key).to_have_attribute("data-value", str(made_tokens))
    expect(page.locator("#chart-key rect.bar[data-label='master key']")).to_be_attached()
    expect(page.locator("#chart-model rect.bar[data-label='reader']")).to_be_attached()
    page.select_option("#usage-metric", "cost_usd")  # spend: the deployments' prices
    spend = sum(r["cost_usd"] for r in expected["data"] if r["model"] == "gpt-test")
    assert spend > 0
    bar = page.locator("#chart-model rect.bar[data-label='gpt-test']")
    expect(page.locator("#usage-spend")).to_contain_text("$")
    expect(page.locator("#chart-model")).to_contain_text("$")  # redrawn in USD
    assert float(bar.get_attribute("data-value") or "nan") == pytest.approx(spend)
    snap(page, "usage")
    page.select_option("#usage-key", made["id"])  # one key's usage
    expect(page.locator("#chart-key rect.bar")).to_have_count(1)


def test_a_virtual_key_sees_no_admin_page(page: Page, console_gateway: str) -> None:
    made = httpx.post(f"{console_gateway}/v1/keys", headers=ADMIN,
                      json={"name": "viewer", "models": ["gpt-test"]}).json()
    chat(console_gateway, made["key"], "gpt-test", "mine")
    sign_in(page, made["key"])
    expect(page.locator("#who-label")).to_have_text("Virtual key")
    expect(page.locator("#nav a[data-page=keys]")).to_be_hidden()
    expect(page.locator("#chat-model option")).to_have_count(1)  # its one model
    page.goto("/ui#keys")
    expect(page.locator("#notice")).to_have_text("That page is for the master key only.")
    expect(page.locator("#page-keys")).to_be_hidden()
    expect(page.locator("#page-chat")).to_be_visible()
    page.click("#nav a[data-page=usage]")
    expect(page.locator("#chart-key-card")).to_be_hidden()
    expect(page.locator("#usage-key-label")).to_be_hidden()
    bars = page.locator("#chart-model rect.bar")
    expect(bars).to_have_count(1)  # its own usage only
    own = httpx.get(f"{console_gateway}/v1/usage", headers=bearer(made["key"]))
    assert bars.get_attribute("data-value") == str(own.json()["totals"]["total_tokens"])
