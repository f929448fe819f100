// The Schedules page: every schedule with next and last run and its last job's status (live),
// pause / resume / run now, and a form to create one (payload fields from the type's JSON Schema,
// the cron previewed in words with its next five runs).

import { JOB_FIELDS } from "./api.js";
import { age, badge, clear, h, shortId, throttle, until } from "./dom.js";
import { fieldFor } from "./submit.js";

const FIELDS = `id name owner cron timezone overlap catchUp paused nextRunAt lastRunAt description
  lastJob { id status }`;
const LIST = `query Schedules($after: String) {
  schedules(first: 100, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { node { ${FIELDS} } } }
}`;
const PREVIEW = `query Preview($cron: String!, $timezone: String!) {
  cronPreview(cron: $cron, timezone: $timezone) {
    __typename ... on CronPreview { description nextRuns } ... on UserError { code field message }
  }
}`;
const CREATE = `mutation Create($input: ScheduleInput!) {
  createSchedule(input: $input) { __typename ... on Schedule { ${FIELDS} } ... on UserError { code field message } }
}`;
const ACTION = (field) => `mutation Act($id: ID!) {
  ${field}(id: $id) { __typename ... on Schedule { ${FIELDS} } ... on UserError { code field message } }
}`;
const TRIGGER = `mutation Run($id: ID!) {
  triggerSchedule(id: $id) { __typename ... on Job { ${JOB_FIELDS} } ... on UserError { code field message } }
}`;

const POLL_MS = 5000;

function when(iso) {
  if (!iso) return "—";
  const t = Date.parse(iso);
  return t > Date.now() ? until(iso) : age(iso);
}

export class SchedulesView {
  constructor(session) {
    this.session = session;
    this.schedules = [];
    this.rows = new Map(); // schedule id -> row
    this.refreshSoon = throttle(() => this.load(), 1000);
  }

  mount(root) {
    this.body = h("tbody");
    this.caption = h("span", { class: "muted" });
    this.formHolder = h("div");
    root.append(h("section", { class: "view schedules" },
      h("div", { class: "view-head" }, h("h1", {}, "Schedules"), h("span", { class: "spacer" }), this.caption),
      h("div", { class: "card table-card" },
        h("table", { "aria-label": "Schedules" },
          h("thead", {}, h("tr", {}, ["Name", "Cron", "Next run", "Last run", "Last job", "State", ""].map((t) =>
            h("th", { scope: "col" }, t)))),
          this.body)),
      this.formHolder));
    this.renderForm();
    this.timer = setInterval(() => this.load(), POLL_MS);
    this.load();
  }

  unmount() {
    clearInterval(this.timer);
    this.refreshSoon.cancel();
    clearTimeout(this.previewTimer);
  }

  refresh() { this.load(); }

  onLive() { this.load(); }

  onEvent(event) {
    // A schedule's new job, or its last job moving on: the last-job badge follows it live.
    if (event.kind === "CREATED") this.refreshSoon();
    for (const schedule of this.schedules) {
      if (schedule.lastJob?.id === event.job.id) {
        schedule.lastJob = { id: event.job.id, status: event.job.status };
        this.renderRow(schedule);
      }
    }
  }

  async load() {
    try {
      const all = [];
      let after = null;
      let total = 0;
      for (let page = 0; page < 10; page++) {
        const { schedules } = await this.session.api(LIST, { after });
        all.push(...schedules.edges.map((e) => e.node));
        total = schedules.totalCount;
        if (!schedules.pageInfo.hasNextPage) break;
        after = schedules.pageInfo.endCursor;
      }
      this.schedules = all;
      this.caption.textContent = `${all.length} of ${total} schedules`;
      this.render();
    } catch (err) {
      this.caption.textContent = `Not updated: ${err.message}`;
    }
  }

  render() {
    this.rows.clear();
    if (!this.schedules.length) {
      clear(this.body, h("tr", {}, h("td", { colspan: "7", class: "empty" }, "No schedules yet: create one below.")));
      return;
    }
    clear(this.body, this.schedules.map((s) => this.renderRow(s)));
  }

  renderRow(schedule) {
    const act = (label, field) => h("button", {
      type: "button", class: "btn btn-sm", dataset: { action: field },
      onclick: () => this.act(schedule, field),
    }, label);
    const row = h("tr", { dataset: { schedule: schedule.id, name: schedule.name } },
      h("td", { class: "name" }, h("b", {}, schedule.name), schedule.owner !== undefined ? h("div", { class: "muted" }, schedule.owner) : null),
      h("td", { class: "cron" }, h("code", {}, schedule.cron), h("div", { class: "muted" }, `${schedule.description} (${schedule.timezone})`)),
      h("td", { class: "next", title: schedule.nextRunAt || "" }, schedule.paused ? "paused" : when(schedule.nextRunAt)),
      h("td", { class: "last", title: schedule.lastRunAt || "" }, when(schedule.lastRunAt)),
      h("td", { class: "last-job" }, schedule.lastJob
        ? [badge(schedule.lastJob.status), " ", h("a", { href: `#/jobs/${schedule.lastJob.id}` }, shortId(schedule.lastJob.id))]
        : "—"),
      h("td", { class: "state" }, schedule.paused ? "Paused" : "Active"),
      h("td", { class: "actions" },
        schedule.paused ? act("Resume", "resumeSchedule") : act("Pause", "pauseSchedule"),
        " ",
        h("button", { type: "button", class: "btn btn-sm", dataset: { action: "triggerSchedule" }, onclick: () => this.runNow(schedule) }, "Run now")));
    const old = this.rows.get(schedule.id);
    if (old?.isConnected) old.replaceWith(row);
    this.rows.set(schedule.id, row);
    return row;
  }

  async act(schedule, field) {
    try {
      const result = (await this.session.api(ACTION(field), { id: schedule.id }))[field];
      if (result.__typename === "UserError") return this.session.toast(`${result.code}: ${result.message}`, { error: true });
      Object.assign(schedule, result);
      this.renderRow(schedule);
    } catch (err) {
      this.session.toast(err.message, { error: true });
    }
  }

  async runNow(schedule) {
    try {
      const { triggerSchedule: job } = await this.session.api(TRIGGER, { id: schedule.id });
      if (job.__typename === "UserError") return this.session.toast(`${job.code}: ${job.message}`, { error: true });
      schedule.lastJob = { id: job.id, status: job.status };
      this.renderRow(schedule);
      this.session.toast(`Submitted ${job.type} job ${job.id.slice(-8)}.`, { link: ["View", `#/jobs/${job.id}`] });
    } catch (err) {
      this.session.toast(err.message, { error: true });
    }
  }

  // -- the create form ---------------------------------------------------------------------
  renderForm() {
    const types = this.session.jobTypes;
    this.name = h("input", { id: "schedule-name", type: "text", required: true, placeholder: "nightly-report" });
    this.cron = h("input", { id: "schedule-cron", type: "text", required: true, value: "0 3 * * *", spellcheck: "false" });
    this.timezone = h("input", { id: "schedule-timezone", type: "text", value: "UTC", spellcheck: "false" });
    this.type = h("select", { id: "schedule-type" }, types.map((t) => h("option", { value: t.name }, t.name)));
    this.overlap = h("select", { id: "schedule-overlap" }, h("option", { value: "SKIP" }, "Skip while the last job runs"), h("option", { value: "ALLOW" }, "Allow overlap"));
    this.catchUp = h("input", { id: "schedule-catchup", type: "checkbox" });
    this.preview = h("div", { class: "cron-preview", "aria-live": "polite" });
    this.payloadHolder = h("div", { class: "payload-fields" });
    this.errorEl = h("div", { class: "form-error", role: "alert", hidden: true });
    const field = (id, label, control, hint) => h("div", { class: "field" }, h("label", { for: id }, label), control, hint ? h("div", { class: "hint" }, hint) : null);
    const form = h("form", { class: "card submit-form", "aria-label": "Create a schedule", novalidate: true },
      h("h2", {}, "New schedule"),
      field("schedule-name", "Name", this.name, "Unique among your schedules."),
      field("schedule-cron", "Cron", this.cron, "minute hour day month weekday; six fields put seconds first."),
      this.preview,
      field("schedule-timezone", "Time zone", this.timezone, "IANA name, e.g. Europe/Berlin."),
      field("schedule-type", "Job type", this.type),
      this.payloadHolder,
      field("schedule-overlap", "Overlap", this.overlap),
      h("label", { class: "check", for: "schedule-catchup" }, this.catchUp, " After downtime, run the last missed tick once"),
      this.errorEl,
      h("div", { class: "form-actions" }, h("button", { type: "submit", class: "btn btn-primary" }, "Create schedule")));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.create();
    });
    const previewSoon = () => {
      clearTimeout(this.previewTimer);
      this.previewTimer = setTimeout(() => this.showPreview(), 250);
    };
    this.cron.addEventListener("input", previewSoon);
    this.timezone.addEventListener("input", previewSoon);
    this.type.addEventListener("change", () => this.renderPayload());
    clear(this.formHolder, form);
    this.renderPayload();
    this.showPreview();
  }

  renderPayload() {
    const type = this.session.jobTypes.find((t) => t.name === this.type.value);
    const schema = type?.payloadSchema || {};
    const required = new Set(schema.required || []);
    this.fields = Object.entries(schema.properties || {}).map(([name, prop]) => fieldFor(name, prop, schema, required.has(name)));
    const example = (schema.examples || [])[0];
    if (example) for (const f of this.fields) f.fill(example[f.name]);
    clear(this.payloadHolder, this.fields.length ? this.fields.map((f) => f.element) : h("p", { class: "muted" }, "This job type takes no payload fields."));
  }

  async showPreview() {
    const cron = this.cron.value.trim();
    if (!cron) return clear(this.preview);
    try {
      const { cronPreview: p } = await this.session.api(PREVIEW, { cron, timezone: this.timezone.value.trim() || "UTC" });
      if (p.__typename === "UserError") {
        clear(this.preview, h("div", { class: "field-error" }, p.message));
        return;
      }
      clear(this.preview, h("div", { class: "hint" }, h("b", {}, p.description), " — next runs:"),
        h("ol", { class: "next-runs" }, p.nextRuns.map((t) => h("li", { title: t }, new Date(t).toLocaleString()))));
    } catch (err) {
      clear(this.preview, h("div", { class: "field-error" }, err.message));
    }
  }

  async create() {
    this.errorEl.hidden = true;
    const payload = {};
    let ok = true;
    for (const f of this.fields) {
      try {
        const [present, value] = f.read();
        f.setError("");
        if (present) payload[f.name] = value;
      } catch (message) {
        f.setError(String(message));
        ok = false;
      }
    }
    if (!ok) return this.showError("Some fields need attention.");
    const input = {
      name: this.name.value.trim(), cron: this.cron.value.trim(), timezone: this.timezone.value.trim() || "UTC",
      overlap: this.overlap.value, catchUp: this.catchUp.checked, job: { type: this.type.value, payload },
    };
    try {
      const { createSchedule: result } = await this.session.api(CREATE, { input });
      if (result.__typename === "UserError") {
        const f = this.fields.find((x) => result.field && result.field.endsWith(`.${x.name}`));
        if (f) f.setError(result.message);
        return this.showError(`${result.code}${result.field ? ` (${result.field})` : ""}: ${result.message}`);
      }
      this.session.toast(`Created schedule ${result.name}.`);
      this.name.value = "";
      this.load();
    } catch (err) {
      this.showError(err.message);
    }
  }

  showError(message) {
    this.errorEl.textContent = message;
    this.errorEl.hidden = !message;
  }
}
