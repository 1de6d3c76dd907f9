// The chat playground: a model picker, the answer streamed as it is written (fetch +
// ReadableStream over server-sent events, stream_options.include_usage) and each answer's usage.

import { $, call, el, events, fillSelect, modelsOf, showError } from "./api.js";

let history = [];
let running = null;

function bubble(role, text) {
  const body = el("div", { class: "text" }, text);
  const node = el("div", { class: `msg ${role}` }, el("div", { class: "role" }, role), body);
  $("chat-log").append(node);
  node.scrollIntoView({ block: "end" });
  return node;
}

function usageLine(usage, started, firstAt) {
  const parts = [`${usage.prompt_tokens} prompt + ${usage.completion_tokens} completion = ` +
    `${usage.total_tokens} tokens`];
  if (firstAt) parts.push(`first token ${Math.round(firstAt - started)} ms`);
  parts.push(`${Math.round(performance.now() - started)} ms in all`);
  return parts.join(" · ");
}

async function send(text) {
  const model = $("chat-model").value;
  const messages = [];
  const system = $("chat-system").value.trim();
  if (system) messages.push({ role: "system", content: system });
  history.push({ role: "user", content: text });
  bubble("user", text);
  const answer = bubble("assistant", "");
  answer.classList.add("streaming");
  const body = answer.querySelector(".text");
  const meta = el("div", { class: "usage" });
  answer.append(meta);
  running = new AbortController();
  $("chat-stop").hidden = false;
  $("chat-send").disabled = true;
  const started = performance.now();
  let firstAt = null;
  let content = "";
  try {
    const response = await call("/v1/chat/completions", {
      method: "POST", raw: true, signal: running.signal,
      json: { model, messages: [...messages, ...history], stream: true,
        stream_options: { include_usage: true } },
    });
    for await (const chunk of events(response)) {
      if (chunk.error) throw new Error(chunk.error.message);
      const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
      if (delta && delta.content) {
        firstAt = firstAt || performance.now();
        content += delta.content;
        body.textContent = content;
      }
      if (chunk.usage) meta.textContent = usageLine(chunk.usage, started, firstAt);
    }
    history.push({ role: "assistant", content });
    answer.dataset.done = "true";
  } catch (error) {
    if (error.name === "AbortError") meta.textContent = "stopped";
    else answer.append(el("div", { class: "error" }, error.message));
    history.pop();
  } finally {
    answer.classList.remove("streaming");
    running = null;
    $("chat-stop").hidden = true;
    $("chat-send").disabled = false;
  }
}

export function setup() {
  $("chat-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("chat-text").value.trim();
    if (!text || running) return;
    $("chat-text").value = "";
    send(text);
  });
  $("chat-text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      $("chat-form").requestSubmit();
    }
  });
  $("chat-stop").addEventListener("click", () => running && running.abort());
  $("chat-clear").addEventListener("click", () => {
    history = [];
    $("chat-log").replaceChildren();
  });
}

export function show() {
  fillSelect($("chat-model"), modelsOf("chat"), "(no chat model)");
}

export function reset() {
  history = [];
  $("chat-log").replaceChildren();
  showError($("notice"), null);
}
