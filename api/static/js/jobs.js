// The jobs table: filters by status and type, cursor paging, live rows from the event feed.

import { ApiError, JOB_FIELDS } from "./api.js";
import {
  JOB_STATUSES, TERMINAL, age, badge, clear, h, newestFirst, number, progressBar, setProgress, shortId, throttle, until,
} from "./dom.js";

const PAGE_SIZES = [25, 50, 100];

const LIST = `query Jobs($filter: JobFilter, $first: Int, $after: String) {
  jobs(filter: $filter, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node { ${JOB_FIELDS} } }
  }
}`;

const COUNTS = `query Counts($type: String) {
  all: jobs(filter: {type: $type}, first: 0) { totalCount }
  ${JOB_STATUSES.map((s) => `${s}: jobs(filter: {type: $type, status: [${s}]}, first: 0) { totalCount }`).join("\n  ")}
}`;

const ACTION = (name) => `mutation($id: ID!) {
  ${name}(id: $id) { __typename ... on Job { ${JOB_FIELDS} } ... on UserError { code message } }
}`;

/** Cancel or retry a job; returns the job as the server left it, or throws ApiError. */
export async function act(session, action, id) {
  const data = await session.api(ACTION(action), { id });
  const result = data[action];
  if (result.__typename === "UserError") throw new ApiError(result.message, result.code);
  return result;
}

/** The Cancel / Retry buttons for a job, wired to the API. */
export function actionButtons(session, job, { small = true, onDone = () => {} } = {}) {
  const size = small ? " btn-sm" : "";
  const run = async (e, action, label) => {
    e.stopPropagation();
    e.currentTarget.disabled = true;
    try {
      onDone(await act(session, action, job.id));
    } catch (err) {
      session.toast(`${label} failed: ${err.message}`, { error: true });
      e.currentTarget.disabled = false;
    }
  };
  if (!TERMINAL.has(job.status)) {
    return h("button", {
      type: "button", class: `btn btn-danger${size}`, "aria-label": `Cancel job ${job.id}`,
      onclick: (e) => run(e, "cancelJob", "Cancel"),
    }, "Cancel");
  }
  if (job.status === "FAILED" || job.status === "CANCELLED") {
    return h("button", {
      type: "button", class: `btn${size}`, "aria-label": `Retry job ${job.id}`,
      onclick: (e) => run(e, "retryJob", "Retry"),
    }, "Retry");
  }
  return null;
}

export class JobsView {
  constructor(session, params) {
    this.session = session;
    this.statuses = new Set((params.get("status") || "").split(",").filter((s) => JOB_STATUSES.includes(s)));
    this.type = params.get("type") || "";
    this.pageSize = PAGE_SIZES.includes(Number(params.get("size"))) ? Number(params.get("size")) : PAGE_SIZES[0];
    this.cursors = [null]; // the `after` of each page visited; the last is the current page
    this.rows = new Map(); // id -> { job, tr }
    this.total = 0;
    this.hasNext = false;
    this.seq = 0;
    this.flashId = params.get("flash");
    // Counts follow the events at most once a second, or less often when counting is slow (each
    // refresh counts every status: on a store of millions, a scan each): the page keeps its
    // counting under a tenth of the server's time. A debounce never fired while events kept coming.
    this.countsEvery = 1000;
    this.refreshCounts = throttle(() => this.loadCounts(), () => this.countsEvery);
    this.showOwner = session.isAdmin;
  }

  mount(root) {
    this.chips = h("div", { class: "chips", role: "group", "aria-label": "Filter by status" });
    this.typeSelect = h("select", { "aria-label": "Filter by type", onchange: () => this.setType(this.typeSelect.value) },
      h("option", { value: "" }, "All types"),
      this.session.jobTypes.map((t) => h("option", { value: t.name, selected: t.name === this.type }, t.name)));
    this.tbody = h("tbody");
    this.emptyEl = h("div", { class: "empty", hidden: true }, "No jobs match these filters.");
    this.range = h("span", { class: "range" });
    this.prev = h("button", { type: "button", class: "btn btn-sm", onclick: () => this.go(-1) }, "‹ Prev");
    this.next = h("button", { type: "button", class: "btn btn-sm", onclick: () => this.go(1) }, "Next ›");
    const size = h("select", { "aria-label": "Jobs per page", onchange: (e) => this.setPageSize(Number(e.target.value)) },
      PAGE_SIZES.map((n) => h("option", { value: String(n), selected: n === this.pageSize }, `${n} / page`)));
    const headers = ["Job", "Type", "Status", "Progress", "Attempts", this.showOwner ? "Owner" : null, "Created", "Message", ""];
    root.append(
      h("section", { class: "view jobs" },
        h("div", { class: "toolbar" },
          this.chips,
          h("span", { class: "spacer" }),
          h("label", {}, "Type", this.typeSelect),
          h("a", { class: "btn btn-primary", href: "#/submit" }, "New job")),
        h("div", { class: "card table-card" },
          h("table", { class: "jobs-table", "aria-label": "Jobs" },
            h("thead", {}, h("tr", {}, headers.filter((x) => x !== null).map((label) =>
              h("th", { class: label === "Attempts" ? "num" : "", scope: "col" }, label)))),
            this.tbody),
          this.emptyEl,
          h("div", { class: "pager" }, this.range, size, this.prev, this.next))));
    this.renderChips({});
    this.ageTimer = setInterval(() => this.tickAges(), 1000);
    this.refresh();
  }

  unmount() {
    clearInterval(this.ageTimer);
    this.refreshCounts.cancel();
  }

  get filter() {
    const filter = {};
    if (this.statuses.size) filter.status = [...this.statuses];
    if (this.type) filter.type = this.type;
    return filter;
  }

  get onFirstPage() {
    return this.cursors.length === 1;
  }

  saveParams() {
    const params = new URLSearchParams();
    if (this.statuses.size) params.set("status", [...this.statuses].join(","));
    if (this.type) params.set("type", this.type);
    if (this.pageSize !== PAGE_SIZES[0]) params.set("size", String(this.pageSize));
    const query = params.toString();
    history.replaceState(null, "", `#/${query ? `?${query}` : ""}`);
  }

  refresh() {
    this.loadPage();
    this.loadCounts();
  }

  onLive() {
    this.refreshCounts();
  }

  async loadPage() {
    const seq = ++this.seq;
    try {
      const data = await this.session.api(LIST, { filter: this.filter, first: this.pageSize, after: this.cursors.at(-1) });
      if (seq !== this.seq) return;
      this.render(data.jobs);
    } catch (err) {
      if (seq === this.seq) this.session.toast(`Could not load jobs: ${err.message}`, { error: true });
    }
  }

  async loadCounts() {
    const seq = (this.countsSeq = (this.countsSeq || 0) + 1);
    try {
      const started = performance.now();
      const data = await this.session.api(COUNTS, { type: this.type || null });
      this.countsEvery = Math.max(1000, 10 * (performance.now() - started));
      if (seq !== this.countsSeq) return; // the filters changed meanwhile
      const counts = Object.fromEntries(Object.entries(data).map(([k, v]) => [k, v.totalCount]));
      this.renderChips(counts);
      this.total = this.statuses.size ? [...this.statuses].reduce((sum, s) => sum + counts[s], 0) : counts.all;
      this.updatePager();
    } catch (err) {
      console.warn("jobpulse: counts not loaded", err);
    }
  }

  renderChips(counts) {
    const chip = (key, label, pressed, onclick) => h("button", {
      type: "button", class: "chip", "aria-pressed": String(pressed), dataset: { status: key }, onclick,
    }, key !== "all" ? h("span", { class: `swatch ${key}` }) : null, label,
    h("span", { class: "count" }, counts[key] === undefined ? "" : number(counts[key])));
    clear(this.chips,
      chip("all", "All", this.statuses.size === 0, () => this.setStatuses([])),
      JOB_STATUSES.map((s) => chip(s, s[0] + s.slice(1).toLowerCase(), this.statuses.has(s), (e) => {
        const next = new Set(this.statuses);
        if (e.shiftKey || e.metaKey || e.ctrlKey) {
          if (next.has(s)) next.delete(s);
          else next.add(s);
        } else if (next.size === 1 && next.has(s)) next.clear();
        else {
          next.clear();
          next.add(s);
        }
        this.setStatuses([...next]);
      })));
    this.chips.title = "Click a status to filter; Shift-click to combine several.";
  }

  setStatuses(statuses) {
    this.statuses = new Set(statuses);
    this.resetPaging();
  }

  setType(type) {
    this.type = type;
    this.resetPaging();
  }

  setPageSize(size) {
    this.pageSize = size;
    this.resetPaging();
  }

  resetPaging() {
    this.cursors = [null];
    this.saveParams();
    this.refresh();
  }

  go(step) {
    if (step > 0 && this.hasNext) this.cursors.push(this.endCursor);
    else if (step < 0 && this.cursors.length > 1) this.cursors.pop();
    else return;
    this.loadPage();
  }

  render(connection) {
    // Events may have arrived while the page loaded: keep whichever version of a job is newer.
    const seen = new Map([...this.rows].map(([id, entry]) => [id, entry.job]));
    this.rows.clear();
    this.tbody.replaceChildren();
    for (const { node } of connection.edges) {
      const newer = seen.get(node.id);
      this.tbody.append(this.addRow(newer && newer.version > node.version ? newer : node));
    }
    this.total = connection.totalCount;
    this.hasNext = connection.pageInfo.hasNextPage;
    this.endCursor = connection.pageInfo.endCursor;
    this.updatePager();
    if (this.flashId && this.rows.has(this.flashId)) {
      this.rows.get(this.flashId).tr.classList.add("flash");
      this.flashId = null;
    }
  }

  updatePager() {
    const start = (this.cursors.length - 1) * this.pageSize;
    const shown = this.rows.size;
    this.range.textContent = shown
      ? `${number(start + 1)}–${number(start + shown)} of ${number(this.total)}`
      : `0 of ${number(this.total)}`;
    this.prev.disabled = this.cursors.length <= 1;
    this.next.disabled = !this.hasNext;
    this.emptyEl.hidden = shown > 0;
  }

  addRow(job) {
    const tr = h("tr", {
      class: "job-row", dataset: { jobId: job.id },
      onclick: (e) => {
        if (!e.target.closest("a, button")) this.session.navigate(`#/jobs/${job.id}`);
      },
    });
    const entry = { job, tr };
    this.rows.set(job.id, entry);
    this.fillRow(entry);
    return tr;
  }

  fillRow(entry) {
    const { job, tr } = entry;
    tr.dataset.status = job.status;
    const cells = [
      h("td", { class: "id" }, h("a", { href: `#/jobs/${job.id}`, title: job.id }, shortId(job.id))),
      h("td", { class: "type" }, job.type),
      h("td", { class: "status" }, badge(job.status)),
      h("td", { class: "progress-cell" }, progressBar(job)),
      h("td", { class: "num attempts" }, `${job.attempts}/${job.maxAttempts}`),
      this.showOwner ? h("td", { class: "owner" }, job.owner) : null,
      h("td", { class: "age", title: job.createdAt, dataset: { at: job.createdAt } }, age(job.createdAt)),
      h("td", { class: "message", title: rowMessage(job) }, rowMessage(job)),
      null,
    ];
    if (!tr.firstChild || entry.status !== job.status) {
      // The buttons are rebuilt only when the status changes, so a click is never lost mid-update.
      entry.status = job.status;
      cells[cells.length - 1] = h("td", { class: "actions" },
        actionButtons(this.session, job, { onDone: (updated) => this.apply(updated) }));
    } else {
      cells[cells.length - 1] = tr.querySelector("td.actions");
    }
    if (tr.firstChild) {
      // Keep the progress cell, so its bar animates instead of being redrawn.
      setProgress(tr.querySelector(".progress"), job);
      cells[3] = tr.querySelector("td.progress-cell");
    }
    tr.replaceChildren(...cells.filter(Boolean));
  }

  tickAges() {
    const now = Date.now();
    for (const td of this.tbody.querySelectorAll("td.age")) td.textContent = age(td.dataset.at, now);
    for (const { job, tr } of this.rows.values()) {
      if (job.status === "PENDING" && job.runAt) {
        const cell = tr.querySelector("td.message");
        cell.textContent = rowMessage(job, now);
      }
    }
  }

  matches(job) {
    return (!this.statuses.size || this.statuses.has(job.status)) && (!this.type || this.type === job.type);
  }

  /** A job as the server now has it (from an event or a mutation); keeps only newer versions. */
  apply(job, { created = false } = {}) {
    const entry = this.rows.get(job.id);
    if (entry) {
      if (job.version <= entry.job.version) return;
      entry.job = job;
      if (this.matches(job)) this.fillRow(entry);
      else {
        entry.tr.remove();
        this.rows.delete(job.id);
        this.total = Math.max(0, this.total - 1);
        this.updatePager();
      }
      return;
    }
    if (!this.matches(job) || !this.onFirstPage) return;
    // A job new to this view: insert it in its newest-first place, if that is on this page.
    const rows = [...this.rows.values()].map((r) => r.job);
    const index = rows.findIndex((other) => newestFirst(job, other) < 0);
    const position = index === -1 ? rows.length : index;
    if (position >= this.pageSize) return;
    const tr = this.addRow(job);
    if (created) tr.classList.add("flash");
    const before = index === -1 ? null : this.rows.get(rows[index].id).tr;
    this.tbody.insertBefore(tr, before);
    this.total += 1;
    while (this.rows.size > this.pageSize) {
      const last = this.tbody.lastElementChild;
      this.rows.delete(last.dataset.jobId);
      last.remove();
      this.hasNext = true;
    }
    this.updatePager();
  }

  onEvent(event) {
    this.apply(event.job, { created: event.kind === "CREATED" });
    if (event.kind !== "PROGRESS" && event.kind !== "LOG") this.refreshCounts();
  }
}

function rowMessage(job, now = Date.now()) {
  if (job.status === "FAILED" || (job.status === "PENDING" && job.error && job.attempts)) return job.error || "";
  if (job.status === "PENDING" && job.runAt && Date.parse(job.runAt) > now) return `runs ${until(job.runAt, now)}`;
  return job.progressMessage || "";
}
