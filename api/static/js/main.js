// The dashboard shell: sign in, the top bar and connection state, the router, toasts.

import { ApiError, LiveFeed, gql } from "./api.js";
import { clear, h } from "./dom.js";
import { FlowView } from "./flow.js";
import { JobView } from "./job.js";
import { JobsView } from "./jobs.js";
import { SchedulesView } from "./schedules.js";
import { StatsView } from "./stats.js";
import { SubmitView } from "./submit.js";
import { TypesView } from "./types.js";
import { WorkersView } from "./workers.js";

const TOKEN_KEY = "jobpulse.token";
const JOB_TYPES = `{ jobTypes { name description payloadSchema maxAttempts timeoutSeconds } }`;
const ROLE_PROBE = `{ stats { totalJobs } }`;

const viewEl = document.getElementById("view");
const nav = document.querySelector(".nav");
const right = document.querySelector(".topbar-right");
const connEl = document.querySelector(".conn");
const banner = document.getElementById("conn-banner");
const toasts = document.querySelector(".toasts");

let session = null; // { token, isAdmin, jobTypes, feed, api }
let current = null; // the mounted view

function storedToken() {
  return sessionStorage.getItem(TOKEN_KEY) || localStorage.getItem(TOKEN_KEY);
}

function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
  localStorage.removeItem(TOKEN_KEY);
}

/** Check a token against the server; resolve to a session or throw ApiError. */
async function openSession(token) {
  const { jobTypes } = await gql(token, JOB_TYPES);
  let isAdmin = true;
  try {
    await gql(token, ROLE_PROBE);
  } catch (err) {
    if (err instanceof ApiError && err.code === "FORBIDDEN") isAdmin = false;
    else throw err;
  }
  return { token, isAdmin, jobTypes, api: (query, variables) => gql(token, query, variables) };
}

function signInMessage(err) {
  if (err instanceof ApiError && (err.code === "UNAUTHENTICATED" || err.code === "FORBIDDEN")) {
    return `That token was not accepted: ${err.message}.`;
  }
  return err instanceof Error ? err.message : String(err);
}

function showSignIn(message = "") {
  unmount();
  nav.hidden = true;
  right.hidden = true;
  banner.hidden = true;
  const input = h("input", {
    id: "token", type: "password", name: "token", autocomplete: "current-password", required: true,
    placeholder: "Bearer token", spellcheck: "false",
  });
  const remember = h("input", { type: "checkbox", id: "remember" });
  const error = h("div", { class: "form-error", role: "alert", hidden: !message }, message);
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Sign in");
  const form = h("form", { class: "card", "aria-label": "Sign in" },
    h("h1", {}, "Sign in to jobpulse"),
    h("p", {}, "Paste an API token (JOBPULSE_API_KEYS) or the admin token the server printed at start."),
    h("label", { for: "token" }, "Token"),
    input,
    h("div", { class: "row" },
      h("label", { class: "check", for: "remember" }, remember, "Remember on this device"),
      submit),
    error);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const token = input.value.trim();
    if (!token) return;
    submit.disabled = true;
    error.hidden = true;
    try {
      const opened = await openSession(token);
      forgetToken();
      (remember.checked ? localStorage : sessionStorage).setItem(TOKEN_KEY, token);
      start(opened);
    } catch (err) {
      error.textContent = signInMessage(err);
      error.hidden = false;
      input.select();
    } finally {
      submit.disabled = false;
    }
  });
  clear(viewEl, h("section", { class: "signin" }, form));
  input.focus();
}

function setConnection(state, detail) {
  const labels = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…", failed: "Offline" };
  connEl.dataset.state = state;
  connEl.querySelector(".conn-text").textContent = labels[state] || state;
  connEl.title = detail || "Live updates";
  if (state === "reconnecting") {
    banner.className = "banner";
    banner.textContent = "Connection to the server lost. Reconnecting… updates made meanwhile will appear once it is back.";
    banner.hidden = false;
  } else if (state === "failed") {
    banner.className = "banner fatal";
    banner.textContent = detail || "The live connection failed.";
    banner.hidden = false;
  } else {
    banner.hidden = true;
  }
}

async function start(opened) {
  const feed = new LiveFeed(opened.token);
  session = { ...opened, feed, navigate, toast };
  nav.hidden = false;
  right.hidden = false;
  for (const link of nav.querySelectorAll("[data-admin-only]")) link.hidden = !session.isAdmin;
  right.querySelector(".role-pill").textContent = session.isAdmin ? "admin" : "user";
  feed.on("status", setConnection);
  feed.on("event", (event) => current?.onEvent?.(event));
  feed.on("resync", () => current?.refresh?.());
  feed.on("status", (state) => {
    if (state === "live") current?.onLive?.();
  });
  feed.on("fatal", (message, code) => {
    if (code === 4401) signOut(`${message} Sign in again.`);
  });
  setConnection("connecting");
  await feed.start(); // before the first read: see LiveFeed.start
  if (session?.feed === feed) route();
}

function signOut(message = "") {
  if (session) session.feed.stop();
  session = null;
  forgetToken();
  if (location.hash && location.hash !== "#/") history.replaceState(null, "", "#/");
  showSignIn(message);
}

function unmount() {
  if (current) current.unmount?.();
  current = null;
}

function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function route() {
  if (!session) return;
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, search = ""] = hash.split("?");
  const params = new URLSearchParams(search);
  let view;
  let name;
  const jobMatch = path.match(/^\/jobs\/([\w-]+)$/);
  if (jobMatch) {
    view = new JobView(session, jobMatch[1]);
    name = "jobs";
  } else if (path.match(/^\/flows\/[\w-]+$/)) {
    view = new FlowView(session, path.split("/")[2]);
    name = "jobs";
  } else if (path === "/submit") {
    view = new SubmitView(session, params);
    name = "submit";
  } else if (path === "/workers" && session.isAdmin) {
    view = new WorkersView(session);
    name = "workers";
  } else if (path === "/types" && session.isAdmin) {
    view = new TypesView(session);
    name = "types";
  } else if (path === "/schedules") {
    view = new SchedulesView(session);
    name = "schedules";
  } else if (path === "/stats" && session.isAdmin) {
    view = new StatsView(session);
    name = "stats";
  } else {
    view = new JobsView(session, params);
    name = "jobs";
  }
  unmount();
  for (const link of nav.querySelectorAll("a")) {
    if (link.dataset.route === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  current = view;
  clear(viewEl);
  view.mount(viewEl);
}

/** A short message in the corner; `link` is an optional [text, href]. */
export function toast(message, { error = false, link = null, ms = 5000 } = {}) {
  const el = h("div", { class: `toast${error ? " error" : ""}`, role: error ? "alert" : "status" }, message);
  if (link) el.append(" ", h("a", { href: link[1] }, link[0]));
  toasts.append(el);
  setTimeout(() => el.remove(), ms);
}

document.getElementById("sign-out").addEventListener("click", () => signOut());
window.addEventListener("hashchange", route);

async function boot() {
  const token = storedToken();
  if (!token) return showSignIn();
  try {
    start(await openSession(token));
  } catch (err) {
    if (err instanceof ApiError && (err.code === "UNAUTHENTICATED" || err.code === "FORBIDDEN")) forgetToken();
    showSignIn(signInMessage(err));
  }
}

boot();
