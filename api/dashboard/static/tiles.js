// The city overview: one tile per domain, first from `GET /v1/overview` (the newest minute
// in the database), then from the live feed's `area` messages of the province (each
// entity's latest readings, aggregated as the area series are) once they arrive.

import { formatNumber, formatTime, t } from "./i18n.js";
import { DOMAINS, TILE_METRICS, metricInfo, tileValue } from "./metrics.js";

const SEVERITIES = ["critical", "warning", "info"];

function node(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

export function renderTiles(list, overview) {
  const tiles = overview.tiles.map((tile) => {
    const li = node("li", "tile");
    li.dataset.domain = tile.domain;
    li.dataset.reporting = String(tile.reporting);
    li.dataset.minute = tile.minute || "";
    li.setAttribute("aria-labelledby", `tile-${tile.domain}`);
    const title = node("h3", null, t(`domains.${tile.domain}`));
    title.id = `tile-${tile.domain}`;
    li.appendChild(title);

    const reporting = node("p", "big", t("reporting", { n: formatNumber(tile.reporting), total: formatNumber(tile.entities) }));
    li.appendChild(reporting);
    // Reporting entities the registry places nowhere count in the province's tile only.
    li.dataset.unplaced = String(tile.unplaced || 0);
    if (tile.unplaced) li.appendChild(node("p", "muted small unplaced", t("unplaced", { n: formatNumber(tile.unplaced) })));

    const alerts = node("p", "tile-alerts");
    const open = SEVERITIES.filter((s) => tile.alerts_open[s]);
    alerts.appendChild(node("span", "muted", `${t("alertsOpen")}: `));
    if (!open.length) alerts.appendChild(node("span", null, "0"));
    for (const severity of open) {
      const badge = node("span", `badge sev-${severity}`, `${t(`severity.${severity}`)} ${tile.alerts_open[severity]}`);
      alerts.appendChild(badge);
    }
    li.appendChild(alerts);

    const figures = node("dl", "figures");
    for (const metric of TILE_METRICS[tile.domain] || []) {
      const value = tile.values ? (tile.values[metric] ?? null) : tileValue(metric, tile.metrics[metric]);
      const wrap = node("div");
      wrap.dataset.metric = metric;
      wrap.dataset.value = value === null ? "" : String(value);
      wrap.appendChild(node("dt", null, t(`metrics.${metric}`)));
      wrap.appendChild(node("dd", null, formatNumber(value, metricInfo(metric).digits)));
      figures.appendChild(wrap);
    }
    li.appendChild(figures);
    li.appendChild(
      node("p", "muted small", tile.last_event_time ? t("lastEvent", { time: formatTime(tile.last_event_time, { seconds: true }) }) : t("noData")),
    );
    return li;
  });
  list.replaceChildren(...tiles);
}

/** The overview's shape from a live `area` message (contract: `domains` per domain with
 * `entities`, `reporting`, `alerts_open` by severity and `metrics[m].value`; `at` is the
 * newest event time among the area's entities, so each domain's newest event comes from
 * `lastEvent(domain)`, the page's own record of the entities' states). */
export function overviewOfArea(area, lastEvent) {
  const tiles = DOMAINS.map((domain) => {
    const tile = area.domains?.[domain] || {};
    const values = Object.fromEntries(Object.entries(tile.metrics || {}).map(([metric, m]) => [metric, m.value]));
    return {
      domain,
      entities: tile.entities ?? 0,
      reporting: tile.reporting ?? 0,
      unplaced: tile.unplaced ?? 0,
      alerts_open: tile.alerts_open || {},
      metrics: {},
      values,
      minute: area.at || "",
      last_event_time: lastEvent(domain),
    };
  });
  return { tiles, live: true };
}
