// The drill-down: one entity's registry facts, live state, open alerts and the history of
// a metric (`/v1/{domain}/entities/{id}` and `.../series`), in a modal dialog (focus stays
// inside, Escape closes it and focus returns to what opened it).

import { ApiError, api } from "./api.js";
import { drawChart } from "./chart.js";
import { formatNumber, formatTime, nameOf, t } from "./i18n.js";
import { DOMAIN_METRICS, metricInfo } from "./metrics.js";

const WINDOW_MS = 60 * 60 * 1000;
const MINUTE_MS = 60 * 1000;

function node(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

export class DetailView {
  constructor({ dialog, areaName, alertsOf, onClose }) {
    this.dialog = dialog;
    this.areaName = areaName;
    this.alertsOf = alertsOf;
    this.current = null;
    this.metric = null;
    this.request = 0;
    dialog.querySelector("#detail-close").addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => {
      this.current = null;
      onClose();
    });
    this.metrics = dialog.querySelector("#metrics");
    this.metrics.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-metric]");
      if (button) this.showMetric(button.dataset.metric);
    });
  }

  get openEntity() {
    return this.current?.id ?? null;
  }

  async open(entityId, domain) {
    const request = ++this.request;
    this.current = { id: entityId, domain };
    this.dialog.querySelector("#detail-title").textContent = entityId;
    this.dialog.querySelector("#detail-meta").textContent = t("loading");
    this.dialog.querySelector("#detail-state").replaceChildren();
    this.dialog.querySelector("#detail-alerts").replaceChildren();
    this.dialog.querySelector("#chart").replaceChildren();
    if (!this.dialog.open) this.dialog.showModal();
    let detail;
    try {
      detail = await api(`/v1/${encodeURIComponent(domain)}/entities/${encodeURIComponent(entityId)}`);
    } catch (error) {
      if (request !== this.request) return;
      const text = error instanceof ApiError && error.status === 404 ? t("unknownEntity") : error.message;
      this.dialog.querySelector("#detail-meta").textContent = text;
      return;
    }
    if (request !== this.request) return;
    this.current = { id: entityId, domain, detail };
    this.fill(detail);
    const known = DOMAIN_METRICS[domain] || [];
    const seen = Object.keys(detail.metrics || {});
    const choices = [...known, ...seen.filter((m) => !known.includes(m))];
    const first = this.metric && choices.includes(this.metric) ? this.metric : choices.find((m) => seen.includes(m)) || choices[0];
    this.drawMetricButtons(choices);
    if (first) await this.showMetric(first);
  }

  fill(detail) {
    this.dialog.querySelector("#detail-title").textContent = nameOf(detail) || detail.id;
    const where = [detail.commune_id, detail.zone_id].filter(Boolean).map((id) => this.areaName(id));
    const kind = detail.kind ? t(`kinds.${detail.kind}`) : "";
    this.dialog.querySelector("#detail-meta").textContent = [t(`domains.${detail.domain}`), kind, ...where, detail.id]
      .filter(Boolean)
      .join(" · ");
    const list = this.dialog.querySelector("#detail-state");
    const rows = [];
    const seen = detail.state ? t("lastSeen", { time: formatTime(detail.state.event_time, { seconds: true, date: true }) }) : t("neverSeen");
    rows.push(["", seen]);
    for (const [field, value] of Object.entries(detail.state?.data || {})) {
      // Payload fields named like metrics get the metric's label; others keep their name.
      rows.push([t(`metrics.${field}`), typeof value === "number" ? formatNumber(value, 2) : String(value)]);
    }
    list.replaceChildren(
      ...rows.flatMap(([k, v]) => {
        const div = node("div");
        div.append(node("dt", null, k), node("dd", null, v));
        return [div];
      }),
    );
    const alerts = this.alertsOf(detail.id);
    const box = this.dialog.querySelector("#detail-alerts");
    box.replaceChildren(
      ...alerts.map((a) => {
        const p = node("p", "detail-alert");
        const title = document.documentElement.lang === "en" ? a.title_en : a.title_vi;
        p.append(node("span", `badge sev-${a.severity}`, t(`severity.${a.severity}`)), ` ${title} (${t(`state.${a.state}`)})`);
        return p;
      }),
    );
  }

  drawMetricButtons(choices) {
    const label = this.metrics.querySelector("#metrics-label");
    const buttons = choices.map((metric) => {
      const b = node("button", null, t(`metrics.${metric}`));
      b.type = "button";
      b.dataset.metric = metric;
      b.setAttribute("aria-pressed", "false");
      return b;
    });
    this.metrics.replaceChildren(label, ...buttons);
  }

  async showMetric(metric) {
    if (!this.current) return;
    this.metric = metric;
    for (const b of this.metrics.querySelectorAll("button[data-metric]")) {
      b.setAttribute("aria-pressed", String(b.dataset.metric === metric));
    }
    const { id, domain, detail } = this.current;
    // The hour up to the entity's newest minute: a replayed 2024 scenario has no data "now".
    const newest = detail?.state ? Date.parse(detail.state.event_time) : Date.now();
    const end = new Date(Math.floor(newest / MINUTE_MS) * MINUTE_MS + MINUTE_MS);
    const start = new Date(end.getTime() - WINDOW_MS);
    const request = this.request;
    const figure = this.dialog.querySelector("#chart");
    const info = metricInfo(metric);
    let series;
    try {
      series = await api(`/v1/${encodeURIComponent(domain)}/entities/${encodeURIComponent(id)}/series`, {
        params: { metric, from: start.toISOString(), to: end.toISOString(), bucket: "1m" },
      });
    } catch (error) {
      if (request === this.request) figure.replaceChildren(node("p", "error", error.message));
      return;
    }
    if (request !== this.request || this.metric !== metric) return;
    drawChart(figure, {
      points: series.points.map((p) => ({ t: p.t, value: p[info.stat] })),
      start: start.toISOString(),
      end: end.toISOString(),
      label: t(`metrics.${metric}`),
      digits: info.digits,
    });
    figure.dataset.metric = metric;
  }

  /** Redraw in the current language. */
  relabel() {
    if (this.current?.detail) {
      this.fill(this.current.detail);
      this.drawMetricButtons([...this.metrics.querySelectorAll("button[data-metric]")].map((b) => b.dataset.metric));
      if (this.metric) this.showMetric(this.metric);
    }
  }

  /** The entity's live state changed: fetch it again and redraw, keeping focus where it is. */
  async refresh() {
    if (!this.current?.detail) return;
    const { id, domain } = this.current;
    const request = this.request;
    let detail;
    try {
      detail = await api(`/v1/${encodeURIComponent(domain)}/entities/${encodeURIComponent(id)}`);
    } catch {
      return; // the next update or the next opening tries again
    }
    if (request !== this.request || this.current?.id !== id) return;
    this.current.detail = detail;
    this.fill(detail);
    if (this.metric) await this.showMetric(this.metric);
  }
}
