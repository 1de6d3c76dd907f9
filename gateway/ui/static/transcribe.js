// Speech to text: a recording goes to POST /v1/audio/transcriptions (verbose_json: the text
// and timed segments) or, as a job with a progress bar, to POST /v1/tools/transcribe.

import { $, call, el, fillSelect, modelsOf, showError } from "./api.js";
import { busy, follow, setProgress } from "./jobs.js";

const clock = (s) => `${Math.floor(s / 60)}:${(s % 60).toFixed(1).padStart(4, "0")}`;

function render(answer) {
  const segments = (answer.segments || []).map((s) => el("tr", {},
    el("td", { class: "mono" }, `${clock(s.start)} – ${clock(s.end)}`), el("td", {}, s.text.trim())));
  const about = [answer.language, answer.duration ? `${answer.duration.toFixed(1)} s` : null]
    .filter(Boolean).join(" · ");
  const node = $("tr-result");
  node.replaceChildren(el("h3", {}, "Transcript"), el("p", { class: "muted" }, about),
    el("p", { id: "tr-text" }, answer.text));
  if (segments.length) {
    node.append(el("table", { class: "data" },
      el("thead", {}, el("tr", {}, el("th", {}, "When"), el("th", {}, "Text"))),
      el("tbody", {}, ...segments)));
  }
  node.hidden = false;
}

async function run(event) {
  event.preventDefault();
  const file = $("tr-file").files[0];
  showError($("tr-error"), file ? null : new Error("Choose a recording first."));
  if (!file) return;
  const form = new FormData();
  form.append("file", file);
  form.append("model", $("tr-model").value);
  form.append("response_format", "verbose_json");
  const language = $("tr-language").value.trim();
  if (language) form.append("language", language);
  const progress = $("tr-progress");
  $("tr-run").disabled = true;
  $("tr-result").hidden = true;
  try {
    if ($("tr-job").checked) {
      const posted = await call("/v1/tools/transcribe", { method: "POST", form });
      const job = await follow(posted.id, progress);
      if (job.status !== "succeeded") {
        throw new Error(job.error ? job.error.message : `The job was ${job.status}.`);
      }
      render(job.result);
    } else {
      busy(progress, "transcribing…");
      const answer = await call("/v1/audio/transcriptions", { method: "POST", form });
      setProgress(progress, 1, "done", "succeeded");
      render(answer);
    }
  } catch (error) {
    progress.dataset.state = "failed";
    showError($("tr-error"), error);
  } finally {
    $("tr-run").disabled = false;
  }
}

export function setup() {
  $("tr-form").addEventListener("submit", run);
}

export function show() {
  fillSelect($("tr-model"), modelsOf("transcribe"), "(no transcription model)");
}
