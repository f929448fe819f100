// One flow as a graph: its jobs as nodes coloured by status (live, from the event feed), edges from
// each job to the jobs that run after it. Plain SVG, laid out in layers by longest path from a root.

import { badge, clear, h } from "./dom.js";

const FLOW = `query Flow($id: ID!) {
  flow(id: $id) { id name owner status progress createdAt completedAt
    jobs { key after job { id type status progress error version } } }
}`;

const SVG = "http://www.w3.org/2000/svg";
const COLOURS = {
  WAITING: "#c9ced6", PENDING: "#8fb3e8", PROCESSING: "#f2c14e", COMPLETED: "#5cb85c",
  FAILED: "#d9534f", CANCELLED: "#a58b6f",
};
const NODE_W = 120;
const NODE_H = 34;
const SMALL = 14; // nodes of wide layers are small squares
const GAP = 24;
const PER_ROW = 40; // a layer wider than this wraps

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  el.append(...children);
  return el;
}

/** Layers by longest path from a root: a job sits one layer below the deepest job it runs after. */
export function layers(jobs) {
  const depth = new Map();
  const byKey = new Map(jobs.map((j) => [j.key, j]));
  const visit = (key, seen = new Set()) => {
    if (depth.has(key)) return depth.get(key);
    if (seen.has(key)) return 0;
    seen.add(key);
    const after = byKey.get(key)?.after || [];
    const d = after.length ? 1 + Math.max(...after.map((k) => visit(k, seen))) : 0;
    depth.set(key, d);
    return d;
  };
  const rows = [];
  for (const job of jobs) {
    const d = visit(job.key);
    (rows[d] ||= []).push(job);
  }
  return rows.filter(Boolean);
}

export class FlowView {
  constructor(session, id) {
    this.session = session;
    this.id = id;
    this.flow = null;
    this.nodes = new Map(); // job id → svg rect
  }

  mount(root) {
    this.root = h("section", { class: "view flow", "aria-busy": "true" },
      h("div", { class: "crumbs" }, h("a", { href: "#/" }, "← Jobs")), h("p", { class: "muted" }, "Loading…"));
    root.append(this.root);
    this.load();
  }

  refresh() {
    this.load();
  }

  async load() {
    let data;
    try {
      data = await this.session.api(FLOW, { id: this.id });
    } catch (err) {
      this.session.toast(`Could not load the flow: ${err.message}`, { error: true });
      return;
    }
    this.root.removeAttribute("aria-busy");
    if (!data.flow) {
      clear(this.root, h("div", { class: "crumbs" }, h("a", { href: "#/" }, "← Jobs")),
        h("div", { class: "card empty" }, `Flow ${this.id} does not exist, or is not yours to see.`));
      return;
    }
    this.flow = data.flow;
    this.render();
  }

  render() {
    const flow = this.flow;
    this.head = h("div", { class: "job-head" });
    this.renderHead();
    const rows = layers(flow.jobs);
    const place = new Map();
    let y = GAP;
    let width = 0;
    for (const row of rows) {
      const small = row.length > 8;
      const w = small ? SMALL : NODE_W;
      const hgt = small ? SMALL : NODE_H;
      row.forEach((job, i) => {
        const col = i % PER_ROW;
        const line = Math.floor(i / PER_ROW);
        place.set(job.key, { x: GAP + col * (w + (small ? 4 : GAP)), y: y + line * (hgt + 4), w, h: hgt, small });
        width = Math.max(width, GAP + (col + 1) * (w + (small ? 4 : GAP)));
      });
      y += Math.ceil(row.length / PER_ROW) * (hgt + 4) + GAP * 2;
    }
    const graph = svg("svg", { width: Math.max(width, 300), height: y, role: "img", "aria-label": "Flow graph", class: "flow-graph" });
    const edges = svg("g", { stroke: "#9aa3ad", "stroke-width": 1, fill: "none", opacity: flow.jobs.length > 200 ? 0.15 : 0.8 });
    for (const job of flow.jobs) {
      const to = place.get(job.key);
      for (const key of job.after) {
        const from = place.get(key);
        if (from) edges.append(svg("line", { x1: from.x + from.w / 2, y1: from.y + from.h, x2: to.x + to.w / 2, y2: to.y }));
      }
    }
    graph.append(edges);
    this.nodes.clear();
    for (const entry of flow.jobs) {
      const p = place.get(entry.key);
      const rect = svg("rect", { x: p.x, y: p.y, width: p.w, height: p.h, rx: 4, fill: COLOURS[entry.job.status] || "#ccc", stroke: "#555" });
      const title = svg("title");
      title.textContent = `${entry.key} — ${entry.job.type} ${entry.job.status}`;
      const link = svg("a", { href: `#/jobs/${entry.job.id}`, class: "flow-node", "data-key": entry.key, "data-status": entry.job.status }, rect, title);
      if (!p.small) {
        const label = svg("text", { x: p.x + 6, y: p.y + p.h / 2 + 4, "font-size": 12, fill: "#111" });
        label.textContent = entry.key.length > 16 ? `${entry.key.slice(0, 15)}…` : entry.key;
        link.append(label);
      }
      graph.append(link);
      this.nodes.set(entry.job.id, { link, rect, title, entry });
    }
    clear(this.root, h("div", { class: "crumbs" }, h("a", { href: "#/" }, "← Jobs")), this.head,
      h("div", { class: "card flow-card" }, graph));
  }

  renderHead() {
    const flow = this.flow;
    clear(this.head, h("h1", {}, flow.name || "Flow"), badge(flow.status),
      h("span", { class: "id", title: "Flow id" }, flow.id),
      h("span", { class: "muted" }, `${flow.jobs.length} jobs, ${Math.round(flow.progress)}%`));
  }

  onEvent(event) {
    const node = this.nodes.get(event.job.id);
    if (!node || event.job.version <= node.entry.job.version) return;
    node.entry.job = { ...node.entry.job, ...event.job };
    const status = event.job.status;
    node.rect.setAttribute("fill", COLOURS[status] || "#ccc");
    node.link.setAttribute("data-status", status);
    node.title.textContent = `${node.entry.key} — ${node.entry.job.type} ${status}`;
    if (["COMPLETED", "FAILED", "CANCELLED"].includes(status)) this.load(); // the flow's status and progress
  }
}
