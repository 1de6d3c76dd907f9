// A short guide in place for each page: what it does, which of this gateway's models do it,
// and an example curl. The curl says $GATEWAY_KEY: the page never writes the key itself.

import { el, modelsOf } from "./api.js";

const AUTH = '-H "Authorization: Bearer $GATEWAY_KEY"';

const GUIDES = {
  chat: {
    title: "Chat completions",
    what: "OpenAI's chat API for every configured model (OpenAI, Anthropic, Gemini, Ollama, local). " +
      "This page streams the answer as server-sent events and shows each answer's token usage " +
      "(stream_options.include_usage).",
    kind: "chat",
    curl: (o, m) => `curl -N ${o}/v1/chat/completions ${AUTH} \\\n  -H "Content-Type: application/json" \\\n` +
      `  -d '{"model": "${m}", "stream": true, "stream_options": {"include_usage": true},\n` +
      `       "messages": [{"role": "user", "content": "Hello"}]}'`,
  },
  documents: {
    title: "Extraction and OCR",
    what: "Extraction reads a document (PDF text layer, OCR for scans and images, or plain text) " +
      "and asks a chat model for its key facts, or for JSON valid against your schema. It runs " +
      "as a job: the progress bar follows GET /v1/jobs/{id}/events. OCR answers the text of each " +
      "page at once.",
    kind: "ocr",
    curl: (o, m) => `curl ${o}/v1/tools/extract ${AUTH} \\\n  -F file=@invoice.pdf -F 'schema={"type": "object"}'\n` +
      `# 202 {"id": "job_...", "status": "queued"}; then: curl ${o}/v1/jobs/job_... ${AUTH}\n` +
      `curl ${o}/v1/tools/ocr ${AUTH} -F file=@scan.png -F model=${m}`,
  },
  detect: {
    title: "Object detection",
    what: "Finds objects (the 80 COCO classes) in an image with a YOLO detector and answers " +
      "their labels, confidences and boxes in pixels; this page draws the boxes over the image. " +
      "?format=png answers the image with the boxes drawn by the gateway.",
    kind: "detect",
    curl: (o, m) => `curl ${o}/v1/tools/detect ${AUTH} \\\n  -F file=@photo.jpg -F model=${m} -F confidence=0.3`,
  },
  transcribe: {
    title: "Speech to text",
    what: "Transcribes a recording (WAV, MP3, M4A, OGG, WebM, FLAC, video) with Whisper or an " +
      "OpenAI transcription model, as OpenAI's /v1/audio/transcriptions does. As a job " +
      "(/v1/tools/transcribe) long recordings run in the background with a progress bar.",
    kind: "transcribe",
    curl: (o, m) => `curl ${o}/v1/audio/transcriptions ${AUTH} \\\n  -F file=@meeting.wav -F model=${m} -F response_format=verbose_json`,
  },
  usage: {
    title: "Usage and spend",
    what: "Requests, tokens and cost per key, end user, model and UTC day, from GET /v1/usage. " +
      "The master key sees every key; a virtual key sees its own. Cost comes from the " +
      "deployments' input_cost_per_mtok and output_cost_per_mtok in models.yaml.",
    kind: null,
    curl: (o) => `curl "${o}/v1/usage?from=2026-11-01&to=2026-11-30" ${AUTH}`,
  },
  keys: {
    title: "Virtual keys",
    what: "Keys for teams and apps, made by the master key: optional model allow-list, rpm, tpm, " +
      "a budget and an expiry. The secret is shown once, at creation; the gateway stores only " +
      "its hash. A revoked key is refused at once on every replica.",
    kind: null,
    curl: (o) => `curl ${o}/v1/keys ${AUTH} \\\n  -H "Content-Type: application/json" -d '{"name": "team-a", "rpm": 60}'`,
  },
};

export function render() {
  const origin = location.origin;
  for (const node of document.querySelectorAll("details.guide")) {
    const guide = GUIDES[node.dataset.guide];
    const models = guide.kind ? modelsOf(guide.kind).map((m) => m.id) : [];
    const example = models[0] || "MODEL";
    node.replaceChildren(el("summary", {}, `Guide: ${guide.title}`), el("p", {}, guide.what));
    if (guide.kind) {
      node.append(el("p", {}, "Models here: ", models.length ? models.join(", ") : "none configured for this key"));
    }
    node.append(el("pre", { class: "mono" }, guide.curl(origin, example)));
  }
}
