// Object detection: the image goes to POST /v1/tools/detect; the boxes it answers are drawn
// over the image on a canvas, one colour per label, and listed below it.

import { $, call, el, fillSelect, fmt, modelsOf, showError } from "./api.js";

const COLOURS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
  "#bfef45", "#469990", "#9a6324"];

export function colourOf(label, labels) {
  return COLOURS[labels.indexOf(label) % COLOURS.length];
}

async function drawImage(file) {
  const image = await createImageBitmap(file);
  const canvas = $("detect-canvas");
  canvas.width = image.width;
  canvas.height = image.height;
  canvas.getContext("2d").drawImage(image, 0, 0);
  canvas.dataset.boxes = "0";
  return image;
}

function swatch(colour) {
  const node = el("span", { class: "swatch" });
  node.style.background = colour; // the CSSOM, not a style attribute (the page's CSP)
  return node;
}

function drawBoxes(answer) {
  const canvas = $("detect-canvas");
  const context = canvas.getContext("2d");
  const labels = [...new Set(answer.objects.map((o) => o.label))];
  const line = Math.max(2, Math.round(Math.min(canvas.width, canvas.height) / 200));
  context.font = `${8 * line}px sans-serif`;
  context.textBaseline = "top";
  for (const object of answer.objects) {
    const [x1, y1, x2, y2] = object.box;
    const colour = colourOf(object.label, labels);
    context.lineWidth = line;
    context.strokeStyle = colour;
    context.strokeRect(x1, y1, x2 - x1, y2 - y1);
    const caption = `${object.label} ${Math.round(object.confidence * 100)}%`;
    const width = context.measureText(caption).width + 2 * line;
    context.fillStyle = colour;
    context.fillRect(x1, Math.max(0, y1 - 10 * line), width, 10 * line);
    context.fillStyle = "#fff";
    context.fillText(caption, x1 + line, Math.max(0, y1 - 10 * line) + line);
  }
  canvas.dataset.boxes = String(answer.objects.length);
  const rows = answer.objects.map((o) => el("tr", { "data-label": o.label },
    el("td", {}, swatch(colourOf(o.label, labels)), o.label),
    el("td", {}, `${(o.confidence * 100).toFixed(1)}%`),
    el("td", { class: "mono" }, o.box.map((v) => fmt.int(v)).join(", "))));
  $("detect-objects").tBodies[0].replaceChildren(...rows);
  $("detect-objects").hidden = false;
}

async function run(event) {
  event.preventDefault();
  const file = $("detect-file").files[0];
  showError($("detect-error"), file ? null : new Error("Choose an image first."));
  if (!file) return;
  const form = new FormData();
  form.append("file", file);
  const fields = { model: $("detect-model").value, confidence: $("detect-confidence").value,
    classes: $("detect-classes").value.trim() };
  for (const [name, value] of Object.entries(fields)) if (value) form.append(name, value);
  $("detect-run").disabled = true;
  $("detect-objects").hidden = true;
  try {
    await drawImage(file);
    const answer = await call("/v1/tools/detect", { method: "POST", form });
    drawBoxes(answer);
  } catch (error) {
    showError($("detect-error"), error);
  } finally {
    $("detect-run").disabled = false;
  }
}

export function setup() {
  $("detect-form").addEventListener("submit", run);
  $("detect-file").addEventListener("change", () => {
    const file = $("detect-file").files[0];
    if (file) drawImage(file).catch((error) => showError($("detect-error"), error));
  });
}

export function show() {
  fillSelect($("detect-model"), modelsOf("detect"), "(no detection model)");
}
