// One place's panel (the province, a zone or a commune-level unit), in a modal dialog like
// the entity drill-down: its names and kind, links up to the areas that hold it and down to
// its areas or entities, what its entities report now (`GET /v1/areas/{id}`, and the live
// feed's `area` message when there is one), its open alerts (`GET /v1/alerts?area=`, with
// the feed's newer transitions laid over) and a chart per domain of the area's reading of a
// metric over the last hours (`GET /v1/areas/{id}/series`, field `value`), with a metric
// picker per domain, and the operations centre's own alerts and incidents per hour.

import { api } from "./api.js";
import { drawChart } from "./chart.js";
import { formatNumber, formatTime, nameOf, t } from "./i18n.js";
import { DOMAINS, DOMAIN_METRICS, TILE_METRICS, metricInfo } from "./metrics.js";

/** The domain of the operations centre's own series, and its metrics (hourly or wider). */
const IOC = "ioc";
const IOC_METRICS = ["alerts", "incidents"];
/** Readings: the last 3 hours in 5-minute points; the centre's counts: 24 hours by hour. */
const WINDOWS = {
  readings: { hours: 3, bucket: "5m", step: 5 * 60 * 1000 },
  ioc: { hours: 24, bucket: "1h", step: 60 * 60 * 1000 },
};
/** Entities listed by name in a commune's panel; the rest are counted. */
const ENTITIES_LISTED = 40;
const SEVERITY_RANK = { critical: 0, warning: 1, info: 2 };

function node(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

function button(text, data, className = "link") {
  const b = node("button", className, text);
  b.type = "button";
  Object.assign(b.dataset, data);
  return b;
}

function localized(thing) {
  return document.documentElement.lang === "en" ? thing.title_en : thing.title_vi || thing.title_en;
}

export class AreaView {
  /**
   * @param {{dialog: HTMLDialogElement,
   *          area: (id: string) => object | undefined,
   *          entitiesIn: (areaId: string) => object[],
   *          alertsIn: (areaId: string) => object[],
   *          liveOf: (areaId: string) => object | null,
   *          newestIn: (areaId: string) => number | null,
   *          entityName: (entityId: string) => string,
   *          openEntity: (entityId: string, domain: string) => void,
   *          shown: (areaId: string | null) => void}} parts
   */
  constructor(parts) {
    Object.assign(this, parts);
    this.current = null;
    this.request = 0;
    /** The metric chosen per domain, kept from one area to the next. */
    this.chosen = new Map([...DOMAINS.map((d) => [d, DOMAIN_METRICS[d][0]]), [IOC, IOC_METRICS[0]]]);
    const $ = (selector) => this.dialog.querySelector(selector);
    this.parts = {
      title: $("#area-title"),
      meta: $("#area-meta"),
      error: $("#area-error"),
      links: $("#area-links"),
      live: $("#area-live"),
      now: $("#area-now"),
      alerts: $("#area-alerts"),
      charts: $("#area-charts"),
    };
    $("#area-close").addEventListener("click", () => this.dialog.close());
    this.dialog.addEventListener("close", () => {
      this.current = null;
      this.request += 1;
      this.shown(null);
    });
    this.dialog.addEventListener("click", (event) => {
      const target = event.target.closest("button");
      if (!target) return;
      if (target.dataset.area) this.open(target.dataset.area);
      else if (target.dataset.entity) this.openEntity(target.dataset.entity, target.dataset.domain);
      else if (target.dataset.metric) this.choose(target.dataset.chart, target.dataset.metric);
    });
  }

  get openArea() {
    return this.current?.id ?? null;
  }

  async open(areaId) {
    const request = ++this.request;
    this.current = { id: areaId, summary: null, alerts: [] };
    this.dialog.dataset.area = areaId;
    this.parts.error.textContent = "";
    for (const part of ["links", "now", "alerts", "charts"]) this.parts[part].replaceChildren();
    this.parts.live.textContent = "";
    this.drawHead();
    this.parts.meta.textContent = t("loading");
    if (!this.dialog.open) this.dialog.showModal();
    this.shown(areaId);
    let summary;
    try {
      summary = await api(`/v1/areas/${encodeURIComponent(areaId)}`);
    } catch (error) {
      if (request !== this.request) return;
      this.parts.meta.textContent = "";
      this.parts.error.textContent = error.status === 404 ? t("unknownArea") : error.message;
      return;
    }
    if (request !== this.request) return;
    this.current.summary = summary;
    this.drawHead();
    this.drawLinks();
    this.drawNow();
    this.drawChartFrames();
    await Promise.all([this.readAlerts(request), this.drawCharts(request)]);
  }

  /** Read everything again (the feed said something changed), keeping focus where it is. */
  async refresh() {
    const id = this.openArea;
    if (!id || !this.current.summary) return;
    const request = this.request;
    try {
      const summary = await api(`/v1/areas/${encodeURIComponent(id)}`);
      if (request !== this.request) return;
      this.current.summary = summary;
      this.drawNow();
    } catch {
      return; // the next change or the next opening tries again
    }
    await Promise.all([this.readAlerts(request), this.drawCharts(request)]);
  }

  /** A live `area` message: the figures of the open area follow it. */
  live(area) {
    if (area.area_id === this.openArea && this.current.summary) this.drawNow();
  }

  /** The board's alerts changed: redraw the list from what is held, no request. */
  alertsChanged() {
    if (this.current?.summary) this.drawAlerts();
  }

  relabel() {
    if (!this.current) return;
    this.drawHead();
    if (!this.current.summary) return;
    this.drawLinks();
    this.drawNow();
    this.drawAlerts();
    this.drawChartFrames();
    this.drawCharts(this.request);
  }

  shape() {
    return this.area(this.current.id) || this.current.summary || { id: this.current.id };
  }

  drawHead() {
    const area = this.current.summary || this.shape();
    this.parts.title.textContent = nameOf(area) || area.id;
    const kind = area.kind === "commune" && area.level ? area.level : area.kind;
    const other = document.documentElement.lang === "en" ? area.name_vi : area.name;
    this.parts.meta.textContent = [kind && t(`areaKinds.${kind}`), other, area.id].filter(Boolean).join(" · ");
  }

  /** Up: every area that holds this one; down: its areas, or a commune's entities. */
  drawLinks() {
    const { summary } = this.current;
    const up = [];
    for (let parent = summary.parent?.id; parent; parent = this.area(parent)?.parent_id) {
      up.push(this.area(parent) || summary.parent);
    }
    const rows = [];
    if (up.length) rows.push(this.linkRow("areaUp", up.map((a) => button(nameOf(a), { area: a.id }))));
    if (summary.children.length) {
      rows.push(this.linkRow("areaDown", summary.children.map((a) => button(nameOf(a), { area: a.id }))));
    }
    if (summary.kind === "commune") {
      const entities = this.entitiesIn(summary.id);
      const items = entities.slice(0, ENTITIES_LISTED).map((e) => button(nameOf(e), { entity: e.id, domain: e.domain }));
      if (entities.length > ENTITIES_LISTED) items.push(node("span", "muted", t("areaEntitiesMore", { n: entities.length - ENTITIES_LISTED })));
      if (items.length) rows.push(this.linkRow("areaEntities", items));
    }
    this.parts.links.replaceChildren(...rows);
  }

  linkRow(label, items) {
    const row = node("p", "area-link-row");
    row.append(node("span", "muted", `${t(label)}: `));
    items.forEach((item, i) => row.append(...(i ? [" · ", item] : [item])));
    return row;
  }

  /** A card per domain: entities reporting, open alerts, and the live figures (those of
   * the header tiles) when the feed has sent the area's tile; then open incidents. */
  drawNow() {
    const { summary } = this.current;
    const live = this.liveOf(summary.id);
    this.parts.live.textContent = live?.at ? t("areaLive", { time: formatTime(live.at, { seconds: true }) }) : "";
    const cards = DOMAINS.map((domain) => {
      const counts = summary.domains[domain];
      const now = live?.domains?.[domain];
      const card = node("div", "area-now-domain");
      card.dataset.domain = domain;
      const total = now?.entities ?? counts?.entities ?? 0;
      const reporting = now?.reporting ?? counts?.reporting ?? 0;
      card.append(
        node("h4", null, t(`domains.${domain}`)),
        node("p", null, total ? t("areaReporting", { n: formatNumber(reporting), total: formatNumber(total) }) : t("areaNoEntities")),
      );
      card.dataset.reporting = String(reporting);
      const alerts = now ? Object.values(now.alerts_open || {}).reduce((a, b) => a + b, 0) : counts?.alerts_open ?? 0;
      if (total) card.append(node("p", "muted small", `${t("alertsOpen")}: ${formatNumber(alerts)}`));
      const figures = node("dl", "figures");
      for (const metric of total && now ? TILE_METRICS[domain] : []) {
        const value = now.metrics?.[metric]?.value ?? null;
        const figure = node("div");
        figure.dataset.metric = metric;
        figure.dataset.value = value === null ? "" : String(value);
        figure.append(node("dt", null, t(`metrics.${metric}`)), node("dd", null, formatNumber(value, metricInfo(metric).digits)));
        figures.append(figure);
      }
      if (figures.children.length) card.append(figures);
      return card;
    });
    if (live && live.incidents_open !== undefined) {
      cards.push(node("p", "area-now-incidents", t("areaIncidents", { n: formatNumber(live.incidents_open) })));
    }
    this.parts.now.replaceChildren(...cards);
  }

  async readAlerts(request) {
    const id = this.current.id;
    let items = [];
    try {
      // Open and acknowledged: what is still on an operator's plate.
      const pages = await Promise.all(
        ["open", "acknowledged"].map((state) => api("/v1/alerts", { params: { area: id, state, limit: 100 } })),
      );
      items = pages.flatMap((page) => page.items);
    } catch (error) {
      if (request === this.request) this.parts.error.textContent = error.message;
    }
    if (request !== this.request) return;
    this.current.alerts = items;
    this.drawAlerts();
  }

  /** The stored alerts, with the page's newer copies of them (the feed runs ahead of the
   * database) and the ones the feed announced that the sink has not written yet. */
  drawAlerts() {
    const byId = new Map(this.current.alerts.map((a) => [a.alert_id, a]));
    for (const alert of this.alertsIn(this.current.id)) byId.set(alert.alert_id, alert);
    const alerts = [...byId.values()]
      .filter((a) => a.state === "open" || a.state === "acknowledged")
      .sort((a, b) => SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity] || Date.parse(b.opened_at) - Date.parse(a.opened_at));
    const items = alerts.map((alert) => {
      const li = node("li", "member");
      li.dataset.alert = alert.alert_id;
      li.dataset.rule = alert.rule_id;
      li.dataset.state = alert.state;
      const name = this.entityName(alert.entity_id);
      const where = button(name, { entity: alert.entity_id, domain: alert.domain });
      where.setAttribute("aria-label", `${t("details")}: ${name}`);
      li.append(node("span", `badge sev-${alert.severity}`, t(`severity.${alert.severity}`)), " ");
      if (alert.provisional) li.append(node("span", "badge provisional", t("provisional")), " ");
      li.append(node("span", "member-title", localized(alert)), " ", node("span", "muted", `(${t(`state.${alert.state}`)})`), " ", where);
      return li;
    });
    if (!items.length) items.push(node("li", "muted", t("areaNoAlerts")));
    this.parts.alerts.replaceChildren(...items);
    this.parts.alerts.dataset.count = String(alerts.length);
  }

  /** A section per domain the area has entities of, and the centre's own. */
  drawChartFrames() {
    const { summary } = this.current;
    const domains = [...DOMAINS.filter((d) => summary.domains[d]?.entities), IOC];
    const sections = domains.map((domain) => {
      const section = node("section", "area-domain");
      section.dataset.domain = domain;
      const heading = node("h4", null, domain === IOC ? t("iocDomain") : t(`domains.${domain}`));
      heading.id = `area-chart-${domain}`;
      const picker = node("div", "metrics");
      picker.setAttribute("role", "group");
      picker.setAttribute("aria-labelledby", heading.id);
      for (const metric of domain === IOC ? IOC_METRICS : DOMAIN_METRICS[domain]) {
        const b = button(this.metricLabel(domain, metric), { chart: domain, metric }, "");
        b.setAttribute("aria-pressed", String(this.chosen.get(domain) === metric));
        picker.append(b);
      }
      const figure = node("figure", "chart");
      figure.dataset.domain = domain;
      section.append(heading, picker, figure);
      return section;
    });
    this.parts.charts.replaceChildren(...sections);
  }

  metricLabel(domain, metric) {
    return domain === IOC ? t(`iocMetrics.${metric}`) : t(`metrics.${metric}`);
  }

  async choose(domain, metric) {
    this.chosen.set(domain, metric);
    const section = this.parts.charts.querySelector(`section[data-domain="${domain}"]`);
    for (const b of section?.querySelectorAll("button[data-metric]") || []) {
      b.setAttribute("aria-pressed", String(b.dataset.metric === metric));
    }
    await this.drawChart(domain, this.request);
  }

  drawCharts(request) {
    const domains = [...this.parts.charts.querySelectorAll("section[data-domain]")].map((s) => s.dataset.domain);
    return Promise.all(domains.map((domain) => this.drawChart(domain, request)));
  }

  /** The window ends at the area's newest event (a replayed 2024 scenario has no data
   * "now"), rounded up to the bucket. */
  window(domain) {
    const { hours, bucket, step } = domain === IOC ? WINDOWS.ioc : WINDOWS.readings;
    const newest = this.newestIn(this.current.id) ?? Date.now();
    const end = new Date(Math.floor(newest / step) * step + step);
    const start = new Date(end.getTime() - hours * 60 * 60 * 1000);
    return { start, end, bucket, hours };
  }

  async drawChart(domain, request) {
    const figure = this.parts.charts.querySelector(`figure[data-domain="${domain}"]`);
    if (!figure || request !== this.request) return;
    const metric = this.chosen.get(domain);
    const { start, end, bucket, hours } = this.window(domain);
    const id = this.current.id;
    let series;
    try {
      series = await api(`/v1/areas/${encodeURIComponent(id)}/series`, {
        params: { domain, metric, from: start.toISOString(), to: end.toISOString(), bucket },
      });
    } catch (error) {
      if (request === this.request && this.chosen.get(domain) === metric) {
        figure.replaceChildren(node("p", "error", error.message));
        figure.dataset.points = "";
      }
      return;
    }
    if (request !== this.request || this.chosen.get(domain) !== metric) return;
    const label = this.metricLabel(domain, metric);
    drawChart(figure, {
      points: series.points.map((p) => ({ t: p.t, value: p.value })),
      start: start.toISOString(),
      end: end.toISOString(),
      label,
      digits: domain === IOC ? 0 : metricInfo(metric).digits,
      title: t("areaChartTitle", { metric: label, hours }),
    });
    Object.assign(figure.dataset, { metric, from: start.toISOString(), to: end.toISOString(), bucket });
  }
}
