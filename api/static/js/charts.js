// Plain SVG line charts: one chart, several series over the same time axis; no library.

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 560;
const HEIGHT = 160;
const PAD = { left: 44, right: 8, top: 10, bottom: 22 };

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  for (const child of children) el.append(child);
  return el;
}

function tick(value) {
  if (value >= 1000) return `${(value / 1000).toFixed(1)}k`;
  return Number.isInteger(value) ? String(value) : value.toFixed(2);
}

/**
 * A line chart: `times` (ISO strings), `series` [{ name, values (numbers or null), colour }].
 * Each non-null value is a point (<circle class="point">) with a <title> saying what it is.
 */
export function lineChart(title, times, series) {
  const values = series.flatMap((one) => one.values.filter((v) => v !== null));
  const max = Math.max(1e-9, ...values);
  const x = (i) => PAD.left + (times.length < 2 ? 0 : (i * (WIDTH - PAD.left - PAD.right)) / (times.length - 1));
  const y = (v) => HEIGHT - PAD.bottom - (v / max) * (HEIGHT - PAD.top - PAD.bottom);
  const svg = s("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: "chart", role: "img", "aria-label": title });
  svg.append(s("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(0), y2: y(0), class: "axis" }));
  for (const v of [max / 2, max]) {
    svg.append(s("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(v), y2: y(v), class: "grid" }));
    svg.append(s("text", { x: PAD.left - 4, y: y(v) + 4, "text-anchor": "end", class: "tick" }, tick(v)));
  }
  for (const i of [0, times.length - 1]) {
    if (i < 0 || !times[i]) continue;
    const at = new Date(times[i]).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    svg.append(s("text", { x: x(i), y: HEIGHT - 6, "text-anchor": i ? "end" : "start", class: "tick" }, at));
  }
  for (const one of series) {
    const points = one.values.map((v, i) => (v === null ? null : [x(i), y(v), v, times[i]])).filter(Boolean);
    const group = s("g", { class: "series", "data-series": one.name, stroke: one.colour, fill: one.colour });
    if (points.length > 1) {
      group.append(s("polyline", { points: points.map(([px, py]) => `${px},${py}`).join(" "), fill: "none" }));
    }
    for (const [px, py, v, at] of points) {
      if (!v) continue; // zero points sit on the axis: the line shows them
      group.append(s("circle", { cx: px, cy: py, r: 2.5, class: "point" },
        s("title", {}, `${one.name}: ${tick(v)} at ${new Date(at).toLocaleString()}`)));
    }
    svg.append(group);
  }
  const legend = document.createElement("div");
  legend.className = "chart-legend";
  for (const one of series) {
    const item = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = one.colour;
    item.append(swatch, one.name);
    legend.append(item);
  }
  const figure = document.createElement("figure");
  figure.className = "card chart-card";
  const caption = document.createElement("figcaption");
  caption.textContent = title;
  figure.append(caption, svg, legend);
  return figure;
}
