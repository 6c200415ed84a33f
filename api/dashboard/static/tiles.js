// The city overview: one tile per domain from `GET /v1/overview`.

import { formatNumber, formatTime, t } from "./i18n.js";
import { TILE_METRICS, metricInfo, tileValue } from "./metrics.js";

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
      const value = tileValue(metric, tile.metrics[metric]);
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
