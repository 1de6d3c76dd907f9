// The console's shell: sign in (the key checked with GET /v1/models, kept in sessionStorage),
// the master key told apart (GET /v1/keys answers it alone), and one page shown per #hash.

import { $, call, session, showError } from "./api.js";
import * as chat from "./chat.js";
import * as detect from "./detect.js";
import * as documents from "./documents.js";
import * as guides from "./guides.js";
import * as keys from "./keys.js";
import * as transcribe from "./transcribe.js";
import * as usage from "./usage.js";

const PAGES = { chat, documents, detect, transcribe, usage, keys };
const ADMIN_ONLY = new Set(["keys"]);
let shown = null;
let signed = false;

async function signIn(key) {
  session.key = key;
  const models = await call("/v1/models");
  session.models = models.data;
  try {
    await call("/v1/keys");
    session.admin = true;
  } catch {
    session.admin = false;
  }
}

function signedIn() {
  signed = true;
  $("page-signin").hidden = true;
  $("nav").hidden = false;
  $("who").hidden = false;
  $("who-label").textContent = session.admin ? "Master key" : (session.key ? "Virtual key" : "No auth");
  for (const link of document.querySelectorAll("#nav [data-admin]")) link.hidden = !session.admin;
  guides.render();
  route();
}

function signedOut(error) {
  signed = false;
  session.key = null;
  session.admin = false;
  session.models = [];
  for (const page of document.querySelectorAll(".page")) page.hidden = true;
  if (shown && shown.leave) shown.leave();
  shown = null;
  chat.reset();
  $("nav").hidden = true;
  $("who").hidden = true;
  $("page-signin").hidden = false;
  showError($("signin-error"), error || null);
  $("signin-key").focus();
}

function route() {
  if (!signed) return;
  let name = location.hash.slice(1) || "chat";
  if (!(name in PAGES)) name = "chat";
  if (ADMIN_ONLY.has(name) && !session.admin) {
    showError($("notice"), new Error("That page is for the master key only."));
    name = "chat";
  } else {
    showError($("notice"), null);
  }
  if (shown && shown.leave) shown.leave();
  for (const page of Object.keys(PAGES)) $(`page-${page}`).hidden = page !== name;
  for (const link of document.querySelectorAll("#nav a")) {
    link.classList.toggle("active", link.dataset.page === name);
  }
  shown = PAGES[name];
  Promise.resolve(shown.show()).catch((error) => showError($("notice"), error));
}

async function start() {
  for (const module of Object.values(PAGES)) module.setup();
  $("signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await signIn($("signin-key").value.trim());
      $("signin-key").value = "";
      showError($("signin-error"), null);
      signedIn();
    } catch (error) {
      signedOut(error);
    }
  });
  $("sign-out").addEventListener("click", () => signedOut(null));
  window.addEventListener("hashchange", route);
  if (session.key) {
    try {
      await signIn(session.key);
      signedIn();
      return;
    } catch (error) {
      signedOut(error.status === 401 ? error : null);
      return;
    }
  }
  signedOut(null);
}

start();
