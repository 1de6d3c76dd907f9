// Documents: extraction (POST /v1/tools/extract → a job followed live with a progress bar)
// or OCR (POST /v1/tools/ocr, answered at once), and the result shown in place.

import { $, call, el, fillSelect, modelsOf, showError } from "./api.js";
import { busy, cancel, follow, setProgress } from "./jobs.js";

let current = null; // { id, abort } of the job being followed

function mode() { return $("doc-mode").value; }

function switchMode() {
  $("doc-extract-fields").hidden = mode() !== "extract";
  $("doc-ocr-fields").hidden = mode() !== "ocr";
}

function result(title, ...parts) {
  const node = $("doc-result");
  node.replaceChildren(el("h3", {}, title), ...parts);
  node.hidden = false;
}

async function extract(file) {
  const form = new FormData();
  form.append("file", file);
  const fields = { model: $("doc-model").value, prompt: $("doc-prompt").value.trim(),
    schema: $("doc-schema").value.trim() };
  for (const [name, value] of Object.entries(fields)) if (value) form.append(name, value);
  const posted = await call("/v1/tools/extract", { method: "POST", form });
  const abort = new AbortController();
  current = { id: posted.id, abort };
  $("doc-cancel").hidden = false;
  try {
    const job = await follow(posted.id, $("doc-progress"), abort.signal);
    if (job.status !== "succeeded") {
      throw new Error(job.error ? job.error.message : `The job was ${job.status}.`);
    }
    const parts = [el("p", { class: "muted" }, `job ${job.id} · model ${job.result.model}`)];
    if (job.result.data !== undefined) {
      parts.push(el("h4", {}, "Data (valid against the schema)"),
        el("pre", { class: "mono", id: "doc-data" }, JSON.stringify(job.result.data, null, 2)));
    }
    parts.push(el("h4", {}, "Answer"), el("pre", { id: "doc-text" }, job.result.text));
    result("Extraction", ...parts);
  } finally {
    current = null;
    $("doc-cancel").hidden = true;
  }
}

async function ocr(file) {
  const form = new FormData();
  form.append("file", file);
  const model = $("doc-ocr-model").value;
  if (model) form.append("model", model);
  busy($("doc-progress"), "reading…");
  const answer = await call("/v1/tools/ocr", { method: "POST", form });
  setProgress($("doc-progress"), 1, `done · ${answer.pages.length} page(s)`, "succeeded");
  result("Text", ...answer.pages.map((page) => el("div", { class: "page-text" },
    el("h4", {}, `Page ${page.page}${page.method ? ` (${page.method})` : ""}`),
    el("pre", {}, page.text))));
}

async function run(event) {
  event.preventDefault();
  const file = $("doc-file").files[0];
  showError($("doc-error"), file ? null : new Error("Choose a document first."));
  if (!file) return;
  $("doc-result").hidden = true;
  $("doc-run").disabled = true;
  try {
    await (mode() === "extract" ? extract(file) : ocr(file));
  } catch (error) {
    if (error.name !== "AbortError") showError($("doc-error"), error);
    $("doc-progress").dataset.state = "failed";
  } finally {
    $("doc-run").disabled = false;
  }
}

async function example() {
  try {
    const defaults = await call("/v1/tools/extract/defaults");
    $("doc-prompt").value = defaults.prompt;
    $("doc-schema").value = JSON.stringify(defaults.schema, null, 2);
  } catch (error) {
    showError($("doc-error"), error);
  }
}

export function setup() {
  $("doc-form").addEventListener("submit", run);
  $("doc-mode").addEventListener("change", switchMode);
  $("doc-example").addEventListener("click", example);
  $("doc-cancel").addEventListener("click", async () => {
    if (!current) return;
    try { await cancel(current.id); } catch (error) { showError($("doc-error"), error); }
  });
  switchMode();
}

export function show() {
  fillSelect($("doc-model"), modelsOf("chat"), "(no chat model)");
  fillSelect($("doc-ocr-model"), modelsOf("ocr"), "(no OCR model)");
}
