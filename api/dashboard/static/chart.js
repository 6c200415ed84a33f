// One metric's history as a line in plain SVG, with its numbers in a table beside it (what
// a screen reader reads, and what an operator copies).

import { formatNumber, formatTime, t } from "./i18n.js";

const SVG = "http://www.w3.org/2000/svg";
const W = 720;
const H = 260;
const M = { left: 64, right: 16, top: 16, bottom: 36 };

function el(name, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (parent) parent.appendChild(node);
  return node;
}

/**
 * Draw `points` ({t, value}) from `start` to `end` (ISO times) into the figure, captioned
 * `title` (by default: the metric over the last 60 minutes).
 * @param {HTMLElement} figure
 * @param {{points: {t: string, value: number}[], start: string, end: string, label: string, digits: number, title?: string}} series
 */
export function drawChart(figure, { points, start, end, label, digits, title }) {
  figure.replaceChildren();
  const caption = document.createElement("figcaption");
  caption.textContent = title || t("chartTitle", { metric: label });
  figure.appendChild(caption);
  figure.dataset.points = String(points.length);
  if (!points.length) {
    const empty = document.createElement("p");
    empty.className = "muted";
    empty.textContent = t("chartEmpty");
    figure.appendChild(empty);
    return;
  }
  const values = points.map((p) => p.value);
  const lo = Math.min(0, ...values);
  const hi = Math.max(...values, lo + 1);
  const t0 = Date.parse(start);
  const t1 = Date.parse(end);
  const x = (time) => M.left + ((Date.parse(time) - t0) / (t1 - t0)) * (W - M.left - M.right);
  const y = (v) => H - M.bottom - ((v - lo) / (hi - lo)) * (H - M.top - M.bottom);
  const last = points[points.length - 1];
  const summary = t("chartSummary", {
    n: points.length,
    min: formatNumber(Math.min(...values), digits),
    max: formatNumber(Math.max(...values), digits),
    last: formatNumber(last.value, digits),
  });

  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "chart-svg" }, figure);
  el("title", {}, svg).textContent = `${label}: ${summary}`;
  // Axes: value range on the left, the time range below.
  el("line", { x1: M.left, y1: H - M.bottom, x2: W - M.right, y2: H - M.bottom, class: "axis" }, svg);
  el("line", { x1: M.left, y1: M.top, x2: M.left, y2: H - M.bottom, class: "axis" }, svg);
  for (const v of [lo, (lo + hi) / 2, hi]) {
    el("line", { x1: M.left, y1: y(v), x2: W - M.right, y2: y(v), class: "grid" }, svg);
    el("text", { x: M.left - 8, y: y(v) + 5, class: "tick", "text-anchor": "end" }, svg).textContent =
      formatNumber(v, digits);
  }
  el("text", { x: M.left, y: H - 10, class: "tick" }, svg).textContent = formatTime(start);
  el("text", { x: W - M.right, y: H - 10, class: "tick", "text-anchor": "end" }, svg).textContent =
    formatTime(end);
  const d = points.map((p, i) => `${i ? "L" : "M"}${x(p.t).toFixed(1)},${y(p.value).toFixed(1)}`);
  el("path", { d: d.join(""), class: "line" }, svg);
  const dots = el("g", { class: "dots" }, svg);
  for (const p of points) el("circle", { cx: x(p.t).toFixed(1), cy: y(p.value).toFixed(1), r: 3.5 }, dots);

  const note = document.createElement("p");
  note.className = "chart-summary";
  note.textContent = summary;
  figure.appendChild(note);

  const details = document.createElement("details");
  const summaryEl = document.createElement("summary");
  summaryEl.textContent = t("chartTable");
  details.appendChild(summaryEl);
  const table = document.createElement("table");
  table.className = "chart-table";
  const head = table.createTHead().insertRow();
  for (const text of [t("time"), t("value")]) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = text;
    head.appendChild(th);
  }
  const body = table.createTBody();
  for (const p of points) {
    const row = body.insertRow();
    row.insertCell().textContent = formatTime(p.t);
    row.insertCell().textContent = formatNumber(p.value, digits);
    row.dataset.value = String(p.value);
  }
  details.appendChild(table);
  figure.appendChild(details);
}
