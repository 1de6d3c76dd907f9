// Virtual keys, for the master key: the list (GET /v1/keys), a new key (POST /v1/keys; its
// secret shown once, with a Copy button, then gone from the page) and revoking one (DELETE,
// after a second click on the same button).

import { $, call, el, fmt, session, showError } from "./api.js";

function number(id) {
  const value = $(id).value.trim();
  return value === "" ? undefined : Number(value);
}

function row(key) {
  const revoke = el("button", { type: "button", class: "revoke", "data-id": key.id }, "Revoke");
  revoke.addEventListener("click", () => confirmRevoke(revoke, key.id));
  const budget = key.max_budget_usd != null ? `${fmt.usd(key.max_budget_usd)} / ${key.budget_period || "total"}` : "—";
  return el("tr", { "data-id": key.id },
    el("td", {}, key.name || "—"), el("td", { class: "mono" }, key.id),
    el("td", {}, key.models && key.models.length ? key.models.join(", ") : "all"),
    el("td", {}, key.rpm ?? "—"), el("td", {}, key.tpm ?? "—"), el("td", {}, budget),
    el("td", {}, fmt.date(key.created)), el("td", {}, fmt.date(key.expires_at)), el("td", {}, revoke));
}

function confirmRevoke(button, id) {
  if (button.dataset.armed !== "true") {
    button.dataset.armed = "true";
    button.textContent = "Confirm revoke";
    button.classList.add("danger");
    setTimeout(() => {
      button.dataset.armed = "false";
      button.textContent = "Revoke";
      button.classList.remove("danger");
    }, 5000);
    return;
  }
  call(`/v1/keys/${encodeURIComponent(id)}`, { method: "DELETE" })
    .then(load).catch((error) => showError($("key-error"), error));
}

export async function load() {
  const keys = await call("/v1/keys");
  $("key-table").tBodies[0].replaceChildren(...keys.data.map(row));
}

function hideSecret() {
  $("key-secret-value").textContent = "";
  $("key-secret").hidden = true;
}

async function create(event) {
  event.preventDefault();
  const spec = { name: $("key-name").value.trim() || undefined, rpm: number("key-rpm"),
    tpm: number("key-tpm"), max_budget_usd: number("key-budget") };
  const models = [...$("key-models").selectedOptions].map((o) => o.value);
  if (models.length) spec.models = models;
  if (spec.max_budget_usd !== undefined) spec.budget_period = $("key-period").value;
  const days = number("key-expires");
  if (days !== undefined) spec.expires_at = Math.floor(Date.now() / 1000) + days * 86400;
  try {
    const made = await call("/v1/keys", { method: "POST", json: spec });
    showError($("key-error"), null);
    $("key-secret-value").textContent = made.key;
    $("key-secret").hidden = false;
    $("key-copy").textContent = "Copy";
    $("key-form").reset();
    await load();
  } catch (error) {
    showError($("key-error"), error);
  }
}

async function copy() {
  const secret = $("key-secret-value").textContent;
  try {
    await navigator.clipboard.writeText(secret);
    $("key-copy").textContent = "Copied";
  } catch {
    const range = document.createRange();
    range.selectNodeContents($("key-secret-value"));
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    $("key-copy").textContent = "Selected: press Ctrl+C";
  }
}

export function setup() {
  $("key-form").addEventListener("submit", create);
  $("key-copy").addEventListener("click", copy);
  $("key-done").addEventListener("click", hideSecret);
}

export async function show() {
  $("key-models").replaceChildren(...session.models.map((m) => el("option", { value: m.id }, m.id)));
  try { await load(); } catch (error) { showError($("key-error"), error); }
}

export const leave = hideSecret; // the secret never outlives its page
