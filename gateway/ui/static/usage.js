// Usage and spend: GET /v1/usage (rows per key, user, model and day, with cost_usd) drawn as
// three charts: per day, per key (the master key only) and per model. A virtual key sees its
// own usage (the gateway answers nothing else to it).

import { $, call, el, fmt, session, showError } from "./api.js";
import { columns, ranking } from "./charts.js";

const DAY_MS = 86_400_000;
let names = new Map(); // key id → name

const iso = (date) => date.toISOString().slice(0, 10);

function formatter(metric) {
  return metric === "cost_usd" ? fmt.usd : fmt.int;
}

function sumBy(rows, field, metric) {
  const out = new Map();
  for (const row of rows) out.set(row[field], (out.get(row[field]) || 0) + row[metric]);
  return out;
}

function keyLabel(id) {
  if (id === null || id === undefined) return "master key";
  const name = names.get(id);
  return name ? `${name} (${id.slice(0, 12)})` : id;
}

function draw(answer) {
  const metric = $("usage-metric").value;
  const format = formatter(metric);
  const perDay = sumBy(answer.data, "date", metric);
  const days = [];
  for (let t = Date.parse(answer.from); t <= Date.parse(answer.to); t += DAY_MS) {
    const day = iso(new Date(t));
    days.push({ label: day, value: perDay.get(day) || 0 });
  }
  $("chart-day").replaceChildren(columns(days, format));
  const perKey = [...sumBy(answer.data, "key_id", metric)].map(([id, value]) => ({ label: keyLabel(id), value }));
  $("chart-key").replaceChildren(ranking(perKey, format));
  const perModel = [...sumBy(answer.data, "model", metric)].map(([label, value]) => ({ label, value }));
  $("chart-model").replaceChildren(ranking(perModel, format));
  const t = answer.totals;
  $("usage-totals").replaceChildren(
    el("div", {}, el("strong", {}, fmt.int(t.requests)), " requests"),
    el("div", {}, el("strong", {}, fmt.int(t.prompt_tokens)), " prompt tokens"),
    el("div", {}, el("strong", {}, fmt.int(t.completion_tokens)), " completion tokens"),
    el("div", { id: "usage-spend" }, el("strong", {}, fmt.usd(t.cost_usd)), " spend"));
}

async function loadNames() {
  if (!session.admin) return;
  const keys = await call("/v1/keys");
  names = new Map(keys.data.map((k) => [k.id, k.name || ""]));
  const options = keys.data.map((k) => ({ id: k.id, label: k.name ? `${k.name} (${k.id})` : k.id }));
  const select = $("usage-key");
  const previous = select.value;
  select.replaceChildren(el("option", { value: "" }, "all keys"),
    ...options.map((o) => el("option", { value: o.id }, o.label)));
  select.value = options.some((o) => o.id === previous) ? previous : "";
}

export async function refresh() {
  try {
    const query = new URLSearchParams({ from: $("usage-from").value, to: $("usage-to").value });
    if (session.admin && $("usage-key").value) query.set("key_id", $("usage-key").value);
    const answer = await call(`/v1/usage?${query}`);
    showError($("usage-error"), null);
    draw(answer);
    $("chart-day").dataset.loaded = "true";
  } catch (error) {
    showError($("usage-error"), error);
  }
}

export function setup() {
  const today = new Date();
  $("usage-to").value = iso(today);
  $("usage-from").value = iso(new Date(today.getTime() - 29 * DAY_MS));
  $("usage-form").addEventListener("submit", (event) => { event.preventDefault(); refresh(); });
  $("usage-metric").addEventListener("change", refresh);
  $("usage-key").addEventListener("change", refresh);
}

export async function show() {
  $("usage-key-label").hidden = !session.admin;
  $("chart-key-card").hidden = !session.admin;
  try { await loadNames(); } catch (error) { showError($("usage-error"), error); }
  await refresh();
}
