// The admin Job types page: each type's flow control (paused, concurrency, per key, rate), with
// Pause/Resume buttons and its limits editable (setJobTypeLimits; an empty box removes that limit).

import { clear, h } from "./dom.js";

const TYPES = `{ jobTypes { name description paused concurrency concurrencyPerKey rateLimit { limit periodSeconds } } }`;
const RESULT = `__typename ... on JobType { name paused } ... on UserError { code field message }`;
const PAUSE = `mutation Pause($type: String!) { pauseJobType(type: $type) { ${RESULT} } }`;
const RESUME = `mutation Resume($type: String!) { resumeJobType(type: $type) { ${RESULT} } }`;
const SET = `mutation SetLimits($type: String!, $limits: JobTypeLimitsInput!) {
  setJobTypeLimits(type: $type, limits: $limits) { ${RESULT} } }`;

/** The number in a box, or null for an empty one (that limit removed). */
function value(input) {
  const text = input.value.trim();
  return text === "" ? null : Number(text);
}

export class TypesView {
  constructor(session) {
    this.session = session;
  }

  mount(root) {
    this.body = h("div", {}, h("p", { class: "muted" }, "Loading…"));
    root.append(h("section", { class: "view types" },
      h("div", { class: "view-head" }, h("h1", {}, "Job types")),
      h("p", { class: "muted" }, "Limits hold across every worker. An empty box means no limit; a paused type accepts submits and starts nothing."),
      this.body));
    this.load();
  }

  unmount() {}

  refresh() {
    this.load();
  }

  onEvent() {}

  async load() {
    try {
      const { jobTypes } = await this.session.api(TYPES);
      this.render(jobTypes);
    } catch (err) {
      clear(this.body, h("div", { class: "card empty" }, `Not loaded: ${err.message}`));
    }
  }

  async act(type, query, variables, field, done) {
    try {
      const data = await this.session.api(query, { type, ...variables });
      const result = data[field];
      if (result.__typename === "UserError") {
        this.session.toast(`${result.code}${result.field ? ` (${result.field})` : ""}: ${result.message}`, { error: true });
        return;
      }
      this.session.toast(done);
      this.load();
    } catch (err) {
      this.session.toast(`Not changed: ${err.message}`, { error: true });
    }
  }

  render(types) {
    const number = (label, current, min = 1, step = 1) =>
      h("input", { type: "number", min: String(min), step: String(step), value: current == null ? "" : String(current), "aria-label": label, class: "input-sm" });
    clear(this.body, h("section", { class: "card table-card" },
      h("table", { "aria-label": "Job types" },
        h("thead", {}, h("tr", {},
          ["Type", "State", "Concurrency", "Per key", "Rate (starts)", "Per seconds", ""].map((label) => h("th", { scope: "col" }, label)))),
        h("tbody", {}, types.map((t) => {
          const concurrency = number(`${t.name} concurrency`, t.concurrency);
          const perKey = number(`${t.name} concurrency per key`, t.concurrencyPerKey);
          const rate = number(`${t.name} rate limit`, t.rateLimit && t.rateLimit.limit);
          const period = number(`${t.name} rate period seconds`, t.rateLimit ? t.rateLimit.periodSeconds : 1, 0.001, "any");
          const save = () => {
            const limits = { concurrency: value(concurrency), concurrencyPerKey: value(perKey), rateLimit: value(rate) };
            if (limits.rateLimit !== null) limits.ratePeriodSeconds = value(period) ?? 1;
            this.act(t.name, SET, { limits }, "setJobTypeLimits", `${t.name} limits saved.`);
          };
          const toggle = t.paused
            ? h("button", { type: "button", class: "btn btn-sm", onclick: () => this.act(t.name, RESUME, {}, "resumeJobType", `${t.name} resumed.`) }, `Resume ${t.name}`)
            : h("button", { type: "button", class: "btn btn-sm", onclick: () => this.act(t.name, PAUSE, {}, "pauseJobType", `${t.name} paused.`) }, `Pause ${t.name}`);
          return h("tr", { class: "type-row", dataset: { type: t.name, paused: String(t.paused) } },
            h("td", { title: t.description }, t.name),
            h("td", {}, h("span", { class: `badge ${t.paused ? "status-CANCELLED" : "status-COMPLETED"}` }, t.paused ? "paused" : "running")),
            h("td", {}, concurrency),
            h("td", {}, perKey),
            h("td", {}, rate),
            h("td", {}, period),
            h("td", {}, toggle, " ", h("button", { type: "button", class: "btn btn-sm", onclick: save }, `Save ${t.name} limits`)));
        })))));
  }
}
