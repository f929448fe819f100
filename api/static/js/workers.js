// The admin Workers page: every worker seen in the last hour, its status, running jobs and counts, live.

import { age, clear, h, number, shortId, throttle } from "./dom.js";

const WORKERS = `{
  workers { id host pid version types concurrency status processed failed startedAt lastSeenAt running { id type } }
}`;

const POLL_MS = 2000;

export class WorkersView {
  constructor(session) {
    this.session = session;
    this.refreshSoon = throttle(() => this.load(), 1000);
  }

  mount(root) {
    this.updated = h("span", { class: "muted" });
    this.body = h("div", {}, h("p", { class: "muted" }, "Loading…"));
    root.append(h("section", { class: "view workers" },
      h("div", { class: "view-head" }, h("h1", {}, "Workers"), h("span", { class: "spacer" }), this.updated),
      this.body));
    this.timer = setInterval(() => this.load(), POLL_MS);
    this.load();
  }

  unmount() {
    clearInterval(this.timer);
    this.refreshSoon.cancel();
  }

  refresh() {
    this.load();
  }

  onEvent(event) {
    if (event.kind === "STARTED" || event.kind === "COMPLETED" || event.kind === "FAILED") this.refreshSoon();
  }

  async load() {
    try {
      const { workers } = await this.session.api(WORKERS);
      this.render(workers);
      this.updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
    } catch (err) {
      this.updated.textContent = `Not updated: ${err.message}`;
    }
  }

  render(workers) {
    if (!workers.length) {
      clear(this.body, h("div", { class: "card empty" }, "No worker has reported in the last hour."));
      return;
    }
    const num = (n) => h("td", { class: "num" }, number(n));
    clear(this.body, h("section", { class: "card table-card" },
      h("table", { "aria-label": "Workers" },
        h("thead", {}, h("tr", {},
          ["Worker", "Status", "Host", "PID", "Types", "Running", "Processed", "Failed", "Started", "Last seen"]
            .map((label) => h("th", { scope: "col" }, label)))),
        h("tbody", {}, workers.map((w) => h("tr", { class: "worker-row", dataset: { workerId: w.id, status: w.status } },
          h("td", { class: "id", title: w.id }, w.id),
          h("td", {}, h("span", { class: `badge worker-${w.status}` }, w.status)),
          h("td", {}, w.host),
          h("td", { class: "num" }, String(w.pid)),
          h("td", {}, w.types.join(", ")),
          h("td", { class: "running" }, `${w.running.length}/${w.concurrency} `,
            w.running.map((job) => h("a", { href: `#/jobs/${job.id}`, title: job.type }, shortId(job.id), " "))),
          num(w.processed),
          num(w.failed),
          h("td", { title: w.startedAt }, age(w.startedAt)),
          h("td", { title: w.lastSeenAt }, age(w.lastSeenAt))))))));
  }
}
