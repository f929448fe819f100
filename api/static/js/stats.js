// The admin stats panel: counts by status, failure rate, processing time, queue and dead-letter depth,
// charts of the last hour or day (statsHistory), and a dead-letter redrive button per type.

import { lineChart } from "./charts.js";
import { STATUSES, clear, duration, h, number, throttle } from "./dom.js";

const HISTORY = `query History($since: DateTime, $bucket: Int) {
  statsHistory(since: $since, bucketSeconds: $bucket) {
    at submitted started completed failed runSecondsP50 runSecondsP95 waitSecondsP95 queueDepth
  }
}`;
const REDRIVE = `mutation Redrive($type: String!) { redriveDeadLetters(type: $type) }`;
const RANGES = { "1h": [3600, 60], "24h": [86400, 900] };

const STATS = `{
  stats {
    totalJobs failureRate averageProcessingTime queueDepth deadLetterDepth
    byStatus { pending processing completed failed cancelled }
    byType { type queueDepth deadLetterDepth byStatus { pending processing completed failed cancelled } }
  }
}`;

const POLL_MS = 5000;

export class StatsView {
  constructor(session) {
    this.session = session;
    this.refreshSoon = throttle(() => this.load(), 1000); // not a debounce: it must run while events keep coming
  }

  mount(root) {
    this.updated = h("span", { class: "muted" });
    this.body = h("div", {}, h("p", { class: "muted" }, "Loading…"));
    this.range = "1h";
    this.charts = h("div", { class: "charts" });
    const rangeButton = (name) => h("button", {
      type: "button", class: "btn btn-sm", "aria-pressed": String(name === this.range), dataset: { range: name },
      onclick: (e) => {
        this.range = name;
        for (const b of e.target.parentElement.children) b.setAttribute("aria-pressed", String(b === e.target));
        this.loadHistory();
      },
    }, name);
    root.append(h("section", { class: "view stats" },
      h("div", { class: "view-head" }, h("h1", {}, "Stats"), h("span", { class: "spacer" }), this.updated),
      this.body,
      h("section", { class: "history" },
        h("div", { class: "view-head" }, h("h2", {}, "History"),
          h("div", { class: "ranges", role: "group", "aria-label": "Range" }, Object.keys(RANGES).map(rangeButton))),
        this.charts)));
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

  onLive() {
    this.load();
  }

  onEvent(event) {
    if (event.kind !== "PROGRESS" && event.kind !== "LOG") this.refreshSoon();
  }

  async loadHistory() {
    const [span, bucket] = RANGES[this.range];
    const since = new Date(Date.now() - span * 1000).toISOString();
    try {
      const { statsHistory } = await this.session.api(HISTORY, { since, bucket });
      this.renderHistory(statsHistory);
    } catch (err) {
      clear(this.charts, h("p", { class: "muted" }, `History not loaded: ${err.message}`));
    }
  }

  renderHistory(buckets) {
    const times = buckets.map((b) => b.at);
    const col = (key) => buckets.map((b) => b[key]);
    clear(this.charts,
      lineChart("Jobs per bucket", times, [
        { name: "submitted", values: col("submitted"), colour: "var(--pending)" },
        { name: "completed", values: col("completed"), colour: "var(--completed)" },
        { name: "failed", values: col("failed"), colour: "var(--failed)" },
      ]),
      lineChart("Run time (seconds)", times, [
        { name: "p50", values: col("runSecondsP50"), colour: "var(--processing)" },
        { name: "p95", values: col("runSecondsP95"), colour: "var(--failed)" },
        { name: "wait p95", values: col("waitSecondsP95"), colour: "var(--pending)" },
      ]),
      lineChart("Queue depth", times, [{ name: "queue depth", values: col("queueDepth"), colour: "var(--accent)" }]));
  }

  async redrive(type, button) {
    button.disabled = true;
    try {
      const { redriveDeadLetters } = await this.session.api(REDRIVE, { type });
      this.session.toast(`${redriveDeadLetters} ${type} jobs sent back to their queue.`);
      this.load();
    } catch (err) {
      this.session.toast(`Redrive failed: ${err.message}`, { error: true });
      button.disabled = false;
    }
  }

  async load() {
    this.loadHistory();
    try {
      const { stats } = await this.session.api(STATS);
      this.render(stats);
      this.updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
    } catch (err) {
      this.updated.textContent = `Not updated: ${err.message}`;
    }
  }

  render(stats) {
    const counts = stats.byStatus;
    const kpi = (label, value, bad = false) =>
      h("div", { class: "card kpi", dataset: { kpi: label } }, h("div", { class: "label" }, label),
        h("div", { class: `value${bad ? " bad" : ""}` }, value));
    const distribution = h("div", { class: "distribution", role: "img", "aria-label": "Jobs by status" });
    for (const status of STATUSES) {
      const count = counts[status.toLowerCase()];
      if (!count) continue;
      const part = h("span", { class: `swatch ${status}`, title: `${status}: ${number(count)}` });
      part.style.width = `${(100 * count) / stats.totalJobs}%`;
      distribution.append(part);
    }
    const cell = (n) => h("td", { class: `num${n ? "" : " zero"}` }, number(n));
    clear(this.body,
      h("div", { class: "kpis" },
        kpi("Total jobs", number(stats.totalJobs)),
        kpi("Failure rate", `${stats.failureRate.toFixed(1)}%`, stats.failureRate > 0),
        kpi("Avg processing time", stats.averageProcessingTime === null ? "—" : duration(stats.averageProcessingTime)),
        kpi("Queue depth", number(stats.queueDepth)),
        kpi("Dead letters", number(stats.deadLetterDepth), stats.deadLetterDepth > 0)),
      h("section", { class: "card", style: null },
        h("h2", {}, "By status"),
        distribution,
        h("div", { class: "legend" }, STATUSES.map((s) =>
          h("span", {}, h("i", { class: `swatch ${s}` }), s[0] + s.slice(1).toLowerCase(), h("b", {}, number(counts[s.toLowerCase()])))))),
      h("section", { class: "card table-card by-type" },
        h("h2", {}, "By job type"),
        h("table", { "aria-label": "Stats by job type" },
          h("thead", {}, h("tr", {},
            h("th", { scope: "col" }, "Type"),
            STATUSES.map((s) => h("th", { class: "num", scope: "col" }, s[0] + s.slice(1).toLowerCase())),
            h("th", { class: "num", scope: "col" }, "Queue"),
            h("th", { class: "num", scope: "col" }, "Dead letters"),
            h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Actions")))),
          h("tbody", {}, stats.byType.map((t) => h("tr", { dataset: { type: t.type } },
            h("td", { class: "type" }, h("a", { href: `#/?type=${encodeURIComponent(t.type)}` }, t.type)),
            STATUSES.map((s) => cell(t.byStatus[s.toLowerCase()])),
            cell(t.queueDepth),
            cell(t.deadLetterDepth),
            h("td", { class: "actions" }, t.deadLetterDepth ? h("button", {
              type: "button", class: "btn btn-sm", "aria-label": `Redrive ${t.type} dead letters`,
              onclick: (e) => this.redrive(t.type, e.currentTarget),
            }, "Redrive") : null)))))));
  }
}
