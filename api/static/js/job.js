// One job: live status and progress, its log lines, payload, and result or error.

import { JOB_FIELDS } from "./api.js";
import { actionButtons } from "./jobs.js";
import { TERMINAL, badge, clear, duration, h, json, progressBar, seconds, setProgress, timestamp, until } from "./dom.js";

const LOG_LINES = 500;

const JOB = `query Job($id: ID!) {
  job(id: $id) {
    ${JOB_FIELDS} payload result idempotencyKey concurrencyKey waitReason logs(last: ${LOG_LINES}) { at level message }
    estimatedCompletion attemptHistory { number worker startedAt endedAt outcome error }
    flow { id name status } dependsOn { id type status } dependents { id type status }
  }
}`;

export class JobView {
  constructor(session, id) {
    this.session = session;
    this.id = id;
    this.job = null;
    this.logs = [];
    this.seq = 0;
  }

  mount(root) {
    this.root = h("section", { class: "view job", "aria-busy": "true" },
      h("div", { class: "crumbs" }, h("a", { href: "#/" }, "← Jobs")),
      h("p", { class: "muted" }, "Loading…"));
    root.append(this.root);
    this.timer = setInterval(() => {
      if (this.job && this.caption && !this.job.completedAt) this.updateCaption();
    }, 1000);
    this.load();
  }

  unmount() {
    clearInterval(this.timer);
  }

  refresh() {
    this.load();
  }

  async load() {
    const seq = ++this.seq;
    let data;
    try {
      data = await this.session.api(JOB, { id: this.id });
    } catch (err) {
      if (seq === this.seq) this.session.toast(`Could not load the job: ${err.message}`, { error: true });
      return;
    }
    if (seq !== this.seq) return;
    if (!data.job) {
      this.root.removeAttribute("aria-busy");
      clear(this.root, h("div", { class: "crumbs" }, h("a", { href: "#/" }, "← Jobs")),
        h("div", { class: "card empty" }, `Job ${this.id} does not exist, or is not yours to see.`));
      return;
    }
    if (this.job && this.job.version > data.job.version) return; // an event already showed a newer state
    this.job = data.job;
    this.logs = data.job.logs;
    this.render();
  }

  render() {
    const job = this.job;
    this.root.removeAttribute("aria-busy");
    this.progress = progressBar(job);
    this.caption = h("div", { class: "caption" });
    this.meta = h("dl", { class: "meta" });
    this.outcome = h("section", { class: "card outcome" });
    this.logList = h("ol", { "aria-label": "Log lines" });
    this.links = h("section", { class: "card links" });
    this.logCount = h("span", { class: "faint" });
    this.head = h("div", { class: "job-head" });
    this.headStatus = null;
    clear(this.root,
      h("div", { class: "crumbs" }, h("a", { href: "#/" }, "← Jobs")),
      this.head,
      h("div", { class: "card job-progress progress-large" }, this.progress, this.caption),
      h("div", { class: "card" }, this.meta),
      this.links,
      h("div", { class: "grid2" },
        h("section", { class: "card payload" }, h("h2", {}, "Payload"), h("pre", { class: "json" }, json(job.payload))),
        this.outcome),
      this.renderAttempts(job.attemptHistory || []),
      h("section", { class: "card logs" }, h("h2", {}, "Logs", this.logCount), this.logList));
    this.update();
    this.renderLinks();
    this.renderLogs();
  }

  /** Its flow (the graph), the jobs it waits for and the jobs that wait for it, as links. */
  renderLinks() {
    const job = this.job;
    const list = (jobs) => jobs.length
      ? h("ul", {}, jobs.map((j) => h("li", {}, h("a", { href: `#/jobs/${j.id}` }, `${j.type} ${j.id.slice(0, 8)}`), " ", badge(j.status))))
      : h("span", { class: "faint" }, "none");
    if (!job.flow && !(job.dependsOn || []).length && !(job.dependents || []).length) {
      this.links.hidden = true;
      return;
    }
    this.links.hidden = false;
    clear(this.links,
      job.flow ? h("p", {}, "Flow: ", h("a", { href: `#/flows/${job.flow.id}` }, job.flow.name || job.flow.id), " ", badge(job.flow.status)) : "",
      h("h2", {}, "Depends on"), list(job.dependsOn || []),
      h("h2", {}, "Dependents"), list(job.dependents || []));
  }

  /** Refresh everything that changes with the job's version (not the payload, which never does). */
  update() {
    const job = this.job;
    if (this.headStatus !== job.status) this.renderHead();
    setProgress(this.progress, job);
    this.updateCaption();
    const items = [
      ["Status", job.status],
      ["Attempts", `${job.attempts} of ${job.maxAttempts}`],
      ["Priority", String(job.priority)],
      ["Owner", job.owner],
      ["Created", timestamp(job.createdAt)],
      ["Runs at", job.runAt ? `${timestamp(job.runAt)} (${until(job.runAt)})` : "—"],
      ["Waits on", job.status === "PENDING" || job.status === "WAITING" ? (job.waitReason || "a free worker") : "—"],
      ["Started", timestamp(job.startedAt)],
      ["Finished", timestamp(job.completedAt)],
      ["Estimated completion", job.estimatedCompletion ? `${timestamp(job.estimatedCompletion)} (${until(job.estimatedCompletion)})` : "—"],
      ["Version", String(job.version)],
      ["Idempotency key", job.idempotencyKey || "—"],
      ["Concurrency key", job.concurrencyKey || "—"],
    ];
    clear(this.meta, items.map(([label, value]) => h("div", {}, h("dt", {}, label), h("dd", { title: value }, value))));
    if (job.status === "COMPLETED") {
      clear(this.outcome, h("h2", {}, "Result"), h("pre", { class: "json" }, json(job.result)));
    } else if (job.error) {
      clear(this.outcome, h("h2", {}, job.status === "FAILED" ? "Error" : "Last error"),
        h("pre", { class: "json error-text" }, job.error));
    } else {
      clear(this.outcome, h("h2", {}, "Result"),
        h("div", { class: "empty" }, TERMINAL.has(job.status) ? "No result." : "Not finished yet."));
    }
  }

  /** The header with its buttons is rebuilt only when the status changes, so a click is never lost. */
  renderHead() {
    const job = this.job;
    this.headStatus = job.status;
    clear(this.head,
      h("h1", {}, job.type),
      badge(job.status),
      h("span", { class: "id", title: "Job id" }, job.id),
      h("div", { class: "actions" }, actionButtons(this.session, job, {
        small: false,
        onDone: (updated) => this.applyJob(updated),
      })));
  }

  updateCaption() {
    const job = this.job;
    const ran = job.startedAt ? seconds(job.startedAt, job.completedAt || new Date().toISOString()) : null;
    clear(this.caption,
      h("span", { class: "progress-message" }, job.progressMessage || (TERMINAL.has(job.status) ? "" : "Waiting…")),
      h("span", {}, job.startedAt ? `${job.completedAt ? "ran" : "running"} ${duration(ran)}` : ""));
  }

  renderAttempts(attempts) {
    const body = attempts.length
      ? h("table", { "aria-label": "Attempts" },
        h("thead", {}, h("tr", {}, ["#", "Outcome", "Worker", "Started", "Took", "Error"].map((l) => h("th", { scope: "col" }, l)))),
        h("tbody", {}, attempts.map((a) => h("tr", { class: "attempt-row", dataset: { outcome: a.outcome } },
          h("td", { class: "num" }, String(a.number)),
          h("td", {}, h("span", { class: `badge attempt-${a.outcome}` }, a.outcome)),
          h("td", { class: "id" }, a.worker || "—"),
          h("td", { title: a.startedAt }, timestamp(a.startedAt)),
          h("td", { class: "num" }, a.endedAt ? duration(seconds(a.startedAt, a.endedAt)) : "running"),
          h("td", { class: "message", title: a.error || "" }, a.error || "")))))
      : h("div", { class: "empty" }, "Not started yet.");
    return h("section", { class: "card table-card attempts" }, h("h2", {}, "Attempts"), body);
  }

  renderLogs() {
    this.logCount.textContent = this.logs.length ? `${this.logs.length}` : "";
    if (!this.logs.length) {
      clear(this.logList, h("li", { class: "empty" }, "No log lines yet."));
      return;
    }
    const stick = this.logList.scrollTop + this.logList.clientHeight >= this.logList.scrollHeight - 4;
    clear(this.logList, this.logs.map((line) => h("li", {},
      h("span", { class: "at", title: line.at }, timestamp(line.at)),
      h("span", { class: `level level-${line.level || "INFO"}` }, line.level || "·"),
      h("span", { class: "msg" }, line.message))));
    if (stick) this.logList.scrollTop = this.logList.scrollHeight;
  }

  applyJob(job) {
    if (!this.job || job.version <= this.job.version) return false;
    // Events carry no payload, result or logs: keep what was read.
    this.job = { ...this.job, ...job };
    this.update();
    return true;
  }

  onEvent(event) {
    if (event.job.id !== this.id || !this.job) return;
    if (!this.applyJob(event.job)) return;
    if (event.kind === "LOG" && event.message) {
      this.logs = [...this.logs, { at: event.at, level: event.level, message: event.message }].slice(-LOG_LINES);
      this.renderLogs();
    } else if (TERMINAL.has(event.job.status) || event.kind === "RETRYING") {
      this.load(); // the result, the error, and the final log lines
    }
  }
}
