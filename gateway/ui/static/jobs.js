// A job followed live: its events (GET /v1/jobs/{id}/events, one per change of status or
// progress) drive a progress bar; if the stream breaks, GET /v1/jobs/{id} is polled instead.

import { call, events } from "./api.js";

const FINAL = new Set(["succeeded", "failed", "cancelled"]);

export function setProgress(node, fraction, label, state) {
  const percent = Math.round(Math.max(0, Math.min(1, fraction)) * 100);
  node.hidden = false;
  node.setAttribute("aria-valuenow", String(percent));
  node.dataset.state = state || "running";
  node.querySelector(".bar").style.width = `${percent}%`;
  node.querySelector(".label").textContent = label || `${percent}%`;
}

export function busy(node, label) {
  node.hidden = false;
  node.setAttribute("aria-valuenow", "0");
  node.dataset.state = "busy";
  node.querySelector(".bar").style.width = "100%";
  node.querySelector(".label").textContent = label;
}

function show(node, job) {
  const stage = job.stage ? ` · ${job.stage}` : "";
  setProgress(node, job.status === "succeeded" ? 1 : job.progress || 0,
    `${job.status}${stage} · ${Math.round((job.progress || 0) * 100)}%`, job.status);
}

async function poll(id, node, signal) {
  for (;;) {
    const job = await call(`/v1/jobs/${encodeURIComponent(id)}`, { signal });
    show(node, job);
    if (FINAL.has(job.status)) return job;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

// Resolves with the job in its final state.
export async function follow(id, node, signal) {
  setProgress(node, 0, "queued", "queued");
  try {
    const response = await call(`/v1/jobs/${encodeURIComponent(id)}/events`, { raw: true, signal });
    let last = null;
    for await (const job of events(response)) {
      last = job;
      show(node, job);
    }
    if (last && FINAL.has(last.status)) return last;
  } catch (error) {
    if (signal && signal.aborted) throw error;
  }
  return poll(id, node, signal);
}

export const cancel = (id) => call(`/v1/jobs/${encodeURIComponent(id)}`, { method: "DELETE" });
