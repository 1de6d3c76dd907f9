// The gateway's /v1 API as the console calls it: the key from sessionStorage, errors as
// Error objects carrying the OpenAI-shaped body's message, and server-sent events read from
// a fetch body (EventSource cannot send an Authorization header).

const KEY = "gateway.console.key";

export const session = {
  get key() { return sessionStorage.getItem(KEY) || ""; },
  set key(value) {
    if (value === null) sessionStorage.removeItem(KEY);
    else sessionStorage.setItem(KEY, value);
  },
  admin: false,
  models: [],
};

export class APIError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `The gateway answered ${status}.`);
    this.status = status;
    this.code = error.code || null;
    this.param = error.param || null;
  }
}

function headers(extra) {
  const out = new Headers(extra || {});
  if (session.key) out.set("Authorization", `Bearer ${session.key}`);
  return out;
}

async function errorOf(response) {
  let body = null;
  try { body = await response.json(); } catch { /* not JSON: the status says it */ }
  return new APIError(response.status, body);
}

// fetch under /v1 with the key; throws APIError for a non-2xx answer. `json` is sent as a
// JSON body, `form` (FormData) as multipart.
export async function call(path, { method = "GET", json, form, signal, raw = false } = {}) {
  const init = { method, headers: headers(), signal };
  if (json !== undefined) {
    init.headers.set("Content-Type", "application/json");
    init.body = JSON.stringify(json);
  } else if (form !== undefined) {
    init.body = form;
  }
  const response = await fetch(path, init);
  if (!response.ok) throw await errorOf(response);
  if (raw) return response;
  const type = response.headers.get("Content-Type") || "";
  return type.includes("json") ? response.json() : response.text();
}

// Each `data:` payload of a text/event-stream body, parsed as JSON, until `[DONE]` or the end.
export async function* events(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, "");
      const data = block.split(/\r?\n/).filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).replace(/^ /, "")).join("\n");
      if (!data) continue;
      if (data === "[DONE]") return;
      yield JSON.parse(data);
    }
  }
}

// Models this key may use, by kind (from /v1/models' owned_by, the deployment's provider).
const TOOL_PROVIDERS = new Set(["whisper", "ocr", "yolo"]);
export function modelsOf(kind) {
  const all = session.models;
  if (kind === "chat") return all.filter((m) => !TOOL_PROVIDERS.has(m.owned_by));
  if (kind === "ocr") return all.filter((m) => m.owned_by === "ocr");
  if (kind === "detect") return all.filter((m) => m.owned_by === "yolo");
  if (kind === "transcribe") {
    const speech = all.filter((m) => m.owned_by === "whisper" || /whisper|transcri/i.test(m.id));
    return speech.length ? speech : all.filter((m) => m.owned_by.startsWith("openai"));
  }
  return all;
}

// -- small DOM helpers shared by the pages ----------------------------------------------

export const $ = (id) => document.getElementById(id);

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

export function fillSelect(select, models, emptyLabel) {
  const previous = select.value;
  select.replaceChildren(...models.map((m) => el("option", { value: m.id }, m.id)));
  if (!models.length) select.append(el("option", { value: "" }, emptyLabel || "(no model)"));
  if (models.some((m) => m.id === previous)) select.value = previous;
}

export function showError(node, error) {
  node.textContent = error ? (error.message || String(error)) : "";
  node.hidden = !error;
}

export const fmt = {
  int: (n) => Math.round(n).toLocaleString("en-US"),
  usd: (n) => (n === 0 || n >= 1 ? `$${n.toFixed(2)}` : `$${Number(n.toPrecision(2))}`),
  date: (unix) => (unix ? new Date(unix * 1000).toISOString().slice(0, 10) : "never"),
};
