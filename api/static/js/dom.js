// Small DOM and formatting helpers shared by every view.

/** The statuses `stats.byStatus` counts. */
export const STATUSES = ["PENDING", "PROCESSING", "COMPLETED", "FAILED", "CANCELLED"];
/** Every job status, WAITING (for its dependencies) first: the job list filters by these. */
export const JOB_STATUSES = ["WAITING", ...STATUSES];
export const TERMINAL = new Set(["COMPLETED", "FAILED", "CANCELLED"]);

/** Create an element: h("a", {href: "#/", class: "x", onclick: fn}, "text", child). */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A status badge: <span class="badge status-X">X</span>. */
export function badge(status) {
  return h("span", { class: `badge status-${status}`, dataset: { status } }, status);
}

/** A progress bar with its percentage; update it with setProgress. */
export function progressBar(job) {
  const fill = h("span");
  const bar = h("div", { class: "bar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100" }, fill);
  const pct = h("span", { class: "pct" });
  const wrap = h("div", { class: "progress" }, bar, pct);
  setProgress(wrap, job);
  return wrap;
}

export function setProgress(wrap, job) {
  const bar = wrap.querySelector(".bar");
  const value = Math.max(0, Math.min(100, Number(job.progress) || 0));
  bar.dataset.status = job.status;
  bar.setAttribute("aria-valuenow", String(Math.round(value)));
  bar.setAttribute("aria-label", `${Math.round(value)}% ${job.status.toLowerCase()}`);
  bar.firstElementChild.style.width = `${value}%`;
  wrap.querySelector(".pct").textContent = `${Math.round(value)}%`;
}

const UNITS = [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]];

/** "4s", "12m", "3h 5m", "2d 4h" */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "—";
  if (seconds < 1) return `${Math.round(seconds * 1000)}ms`;
  if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)}s`;
  let rest = Math.round(seconds);
  const parts = [];
  for (const [unit, size] of UNITS) {
    if (rest >= size && parts.length < 2) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    } else if (parts.length) break;
  }
  return parts.join(" ");
}

/** Seconds since an ISO time, as "5s ago". */
export function age(iso, now = Date.now()) {
  if (!iso) return "—";
  const seconds = Math.floor(Math.max(0, (now - Date.parse(iso)) / 1000));
  if (seconds < 1) return "just now";
  return seconds < 60 ? `${seconds}s ago` : `${duration(seconds)} ago`;
}

/** Seconds until an ISO time, as "in 5m" (or the age when it is past). */
export function until(iso, now = Date.now()) {
  const seconds = (Date.parse(iso) - now) / 1000;
  return seconds > 0 ? `in ${duration(Math.ceil(seconds))}` : age(iso, now);
}

/** Local date and time to the second: "2025-01-31 14:05:09". */
export function timestamp(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function seconds(fromIso, toIso) {
  if (!fromIso || !toIso) return null;
  return (Date.parse(toIso) - Date.parse(fromIso)) / 1000;
}

/** The short form of a job id (UUIDv7: the tail is the random part, the head is the time). */
export function shortId(id) {
  return id.slice(-8);
}

export function json(value) {
  return JSON.stringify(value, null, 2);
}

export function number(n) {
  return new Intl.NumberFormat().format(n);
}

/** Newest first, as the API lists jobs: createdAt, then id. */
export function newestFirst(a, b) {
  const byTime = Date.parse(b.createdAt) - Date.parse(a.createdAt);
  if (byTime) return byTime;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

/**
 * Call `fn` at most once per `ms`: at once when it has not run for `ms`, else once at the end of
 * the window with the latest arguments. A steady stream of calls still runs it (a debounce
 * would wait for a pause that may never come). `ms` may be a function, read at each call.
 */
export function throttle(fn, ms) {
  const interval = typeof ms === "function" ? ms : () => ms;
  let timer = null;
  let last = -Infinity;
  let pending = null;
  const run = () => {
    timer = null;
    last = Date.now();
    const args = pending;
    pending = null;
    fn(...args);
  };
  const wrapped = (...args) => {
    pending = args;
    if (timer === null) timer = setTimeout(run, Math.max(0, last + interval() - Date.now()));
  };
  wrapped.cancel = () => {
    clearTimeout(timer);
    timer = null;
    pending = null;
  };
  return wrapped;
}

