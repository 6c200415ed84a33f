// The operations-centre dashboard: wires the key, the overview tiles, the map, the live
// feed, the incidents, the alert list, the area panels and the drill-downs together.
// Plain ES modules, no build step.

import { AlertBoard } from "./alerts.js";
import {
  ApiError,
  api,
  clearKey,
  discoverNamespaces,
  getKey,
  getNamespace,
  liveUrl,
  setKey,
  setNamespace,
  takeKeyFromUrl,
} from "./api.js";
import { AreaView } from "./area.js";
import { DetailView } from "./detail.js";
import { applyLabels, currentLang, nameOf, setLang, t } from "./i18n.js";
import { IncidentView } from "./incident.js";
import { IncidentBoard } from "./incidents.js";
import { LiveFeed } from "./live.js";
import { CityMap } from "./map.js";
import { DOMAINS } from "./metrics.js";
import { overviewOfArea, renderTiles } from "./tiles.js";

/** Markers drawn at most (a 100,000-entity city stays usable; the summary says so). */
const MAX_MARKERS = 20000;
const PAGE = 1000;
/** Tiles follow the feed: at most one overview request per second while updates flow. */
const OVERVIEW_THROTTLE_MS = 1000;
/** About the sink's batch time (200 ms) and its write. */
const SINK_LAG_MS = 500;
const OVERVIEW_TRAILING_MS = 1800;
const OVERVIEW_POLL_MS = 10000;
const AREAS_POLL_MS = 30000;
const DETAIL_THROTTLE_MS = 2000;
const AREA_THROTTLE_MS = 5000;
/** The province's id until the registry names it (contract B's tiles are of this one). */
const PROVINCE = "quang-ninh";

const $ = (id) => document.getElementById(id);

const page = {
  areas: new Map(),
  entities: new Map(),
  states: new Map(),
  registered: 0,
  alerted: new Set(),
  overview: null,
  /** The feed's latest `area` message of each area (contract B), by area id. */
  live: new Map(),
  province: PROVINCE,
  connection: { state: "idle", retryMs: 0 },
  timers: [],
  trailing: null,
  feed: null,
};

/** Run `fn` at most once per `ms`, and never sooner than `delay` after the first call. */
function throttle(fn, ms, delay = 0) {
  let last = 0;
  let timer = null;
  return () => {
    if (timer) return;
    const wait = Math.max(delay, last + ms - Date.now());
    timer = setTimeout(() => {
      timer = null;
      last = Date.now();
      fn();
    }, wait);
  };
}

// --- connection status -------------------------------------------------------------

function showConnection(state, retryMs = 0) {
  page.connection = { state, retryMs };
  const box = $("conn");
  box.dataset.state = state;
  const text = {
    idle: t("connIdle"),
    connecting: t("connConnecting"),
    live: t("connLive"),
    retrying: t("connRetry", { s: Math.max(1, Math.round(retryMs / 1000)) }),
    refused: t("connIdle"),
  }[state];
  $("conn-text").textContent = text;
  if (state === "refused") signOut(t("keyRefused", { detail: "401" }));
}

// --- data ---------------------------------------------------------------------------

/** The tiles: the province's live figures once the feed sends them, the overview before. */
function drawTiles() {
  const province = page.live.get(page.province);
  const shown = province ? overviewOfArea(province, newestOfDomain) : page.overview;
  if (shown) renderTiles($("tiles"), shown);
  $("tiles").dataset.source = province ? "live" : "overview";
}

/** Newest event time among the page's entity states of one domain (ISO), or null. */
function newestOfDomain(domain) {
  let newest = null;
  for (const [id, state] of page.states) {
    if ((page.entities.get(id)?.domain || state.domain) !== domain) continue;
    if (!newest || Date.parse(state.event_time) > Date.parse(newest)) newest = state.event_time;
  }
  return newest;
}

async function refreshOverview() {
  // Once the province's area messages come, the feed keeps the tiles; no need to ask.
  if (page.live.has(page.province)) return;
  try {
    page.overview = await api("/v1/overview");
    drawTiles();
  } catch {
    // The feed's status tells the operator the API is away; the next poll retries.
  }
}
const overviewThrottled = throttle(refreshOverview, OVERVIEW_THROTTLE_MS, SINK_LAG_MS);

/** The feed runs ahead of the database, which the sink writes in batches: read the
 * overview a moment after an update, and once more after the updates stop, so the tiles
 * end up with what the last update brought. */
function overviewSoon() {
  if (page.live.has(page.province)) return;
  overviewThrottled();
  clearTimeout(page.trailing);
  page.trailing = setTimeout(refreshOverview, OVERVIEW_TRAILING_MS);
}

async function refreshAreas({ redraw = false } = {}) {
  try {
    const { items } = await api("/v1/areas");
    for (const area of items) page.areas.set(area.id, area);
    page.province = items.find((a) => a.kind === "province")?.id || PROVINCE;
    if (redraw) {
      map.setAreas(items);
      fillAreaOptions();
    } else for (const area of items) map.setAreaAlerts(area.id, area.alerts_open);
  } catch {
    // as above
  }
}
const areasSoon = throttle(() => refreshAreas(), 3000);

/** The coastline (a static file of the page, no key): once per page. */
async function loadCoastline() {
  if (page.coastline !== undefined) return;
  try {
    const response = await fetch("/dashboard/coastline.json");
    page.coastline = response.ok ? await response.json() : null;
  } catch {
    page.coastline = null; // the schematic areas alone still make a map
  }
  map.setCoastline(page.coastline);
}

/** The area picker: the province, then each zone followed by its communes. */
function fillAreaOptions() {
  const select = $("area-select");
  const chosen = select.value;
  const all = [...page.areas.values()];
  const option = (area, text = nameOf(area)) => {
    const o = document.createElement("option");
    o.value = area.id;
    o.textContent = text;
    return o;
  };
  const byName = (a, b) => nameOf(a).localeCompare(nameOf(b), currentLang());
  const groups = all.filter((a) => a.kind === "zone").sort(byName).map((zone) => {
    const group = document.createElement("optgroup");
    group.label = nameOf(zone);
    group.append(option(zone, t("wholeZone", { name: nameOf(zone) })));
    group.append(...all.filter((a) => a.parent_id === zone.id).sort(byName).map((c) => option(c)));
    return group;
  });
  select.replaceChildren(...all.filter((a) => a.kind === "province").map((p) => option(p)), ...groups);
  if (chosen) select.value = chosen;
}

/** Whether a registered entity lies in an area (the province holds every registered one). */
function inArea(entityId, areaId) {
  const entity = page.entities.get(entityId);
  if (!entity) return false;
  return areaId === page.province || entity.commune_id === areaId || entity.zone_id === areaId;
}

function newestIn(areaId) {
  const at = page.live.get(areaId)?.at;
  let newest = at ? Date.parse(at) : null;
  for (const [id, state] of page.states) {
    if (!inArea(id, areaId)) continue;
    const time = Date.parse(state.event_time);
    if (newest === null || time > newest) newest = time;
  }
  return newest;
}

async function loadEntities() {
  page.entities.clear();
  let total = 0;
  await Promise.all(
    DOMAINS.map(async (domain) => {
      let after = "";
      while (total < MAX_MARKERS) {
        const body = await api(`/v1/${domain}/entities`, { params: { limit: PAGE, after } });
        for (const entity of body.items) {
          page.entities.set(entity.id, entity);
          if (entity.state) page.states.set(entity.id, { event_time: entity.state.event_time });
        }
        total += body.items.length;
        if (!body.next_after) break;
        after = body.next_after;
      }
    }),
  );
  page.registered = total;
  map.setEntities([...page.entities.values()].slice(0, MAX_MARKERS));
  fillEntityOptions();
  recolorAll();
}

function fillEntityOptions() {
  const options = [...page.entities.values()].map((e) => {
    const option = document.createElement("option");
    option.value = `${nameOf(e)} — ${e.id}`;
    return option;
  });
  $("entity-options").replaceChildren(...options);
  $("map-summary").textContent = map.summary(page.registered);
}

function markerState(entityId) {
  const alerts = board.forEntity(entityId);
  // Provisional alerts are not marked: the map shows what the final minutes bear out.
  const open = alerts.filter((a) => a.state === "open" && !a.provisional);
  if (open.some((a) => a.severity === "critical")) return "critical";
  if (open.length) return "warning";
  if (alerts.length) return "acknowledged";
  return page.states.has(entityId) ? "ok" : "none";
}

function recolorAll() {
  for (const id of page.entities.keys()) map.setState(id, markerState(id));
}

// --- the live feed ------------------------------------------------------------------

const detailSoon = throttle(() => detail.refresh(), DETAIL_THROTTLE_MS);
/** Actions answer with the incident at once; this is for other screens' and the tier's. */
const incidentSoon = throttle(() => incident.refresh(), 1000, SINK_LAG_MS);

function startFeed() {
  page.feed?.stop();
  page.feed = new LiveFeed({
    url: (since) => liveUrl(since),
    onStatus: showConnection,
    stillAllowed: async () => {
      try {
        await api("/v1/overview");
        return true;
      } catch (error) {
        return !(error instanceof ApiError && (error.status === 401 || error.status === 403));
      }
    },
    onSnapshot: ({ entities, alerts, incidents: onScreen, areas, reason }) => {
      // Why the feed started over (initial, or unknown-id after an API restart): shown to
      // tests and to whoever inspects the page.
      const conn = $("conn");
      conn.dataset.snapshot = reason;
      conn.dataset.snapshots = String(Number(conn.dataset.snapshots || 0) + 1);
      page.states = new Map(entities.map((e) => [e.entity_id, e]));
      page.live = new Map(areas.map((a) => [a.area_id, a]));
      board.load(alerts);
      incidents.load(onScreen);
      if (incident.openIncident) incidentSoon();
      recolorAll();
      drawTiles();
      refreshOverview();
      refreshAreas();
      if (area.openArea) areaSoon();
    },
    onEntity: (entity) => {
      const known = page.states.get(entity.entity_id);
      if (known && Date.parse(known.event_time) > Date.parse(entity.event_time)) return;
      page.states.set(entity.entity_id, entity);
      map.setState(entity.entity_id, markerState(entity.entity_id));
      overviewSoon();
      if (detail.openEntity === entity.entity_id) detailSoon();
    },
    onArea: (message) => {
      page.live.set(message.area_id, message);
      if (message.area_id === page.province) drawTiles();
      if (area.openArea === message.area_id) {
        area.live(message);
        areaSoon();
      }
    },
    onAlert: (transition) => {
      board.apply(transition);
      map.setState(transition.entity_id, markerState(transition.entity_id));
      overviewSoon();
      areasSoon();
      if (detail.openEntity === transition.entity_id) detailSoon();
      if (incident.holds(transition.alert_id)) incidentSoon();
      if (area.openArea && inArea(transition.entity_id, area.openArea)) area.alertsChanged();
    },
    onIncident: (message) => {
      incidents.apply(message);
      if (incident.openIncident === message.incident_id) incidentSoon();
    },
  });
  page.feed.start();
}

// --- start, sign in, sign out -------------------------------------------------------

async function start() {
  $("login").hidden = true;
  $("board").hidden = false;
  $("logout").hidden = false;
  await setUpNamespaces();
  await loadAll();
  for (const timer of page.timers) clearInterval(timer);
  page.timers = [setInterval(refreshOverview, OVERVIEW_POLL_MS), setInterval(() => refreshAreas(), AREAS_POLL_MS)];
}

async function loadAll() {
  page.live.clear();
  await loadCoastline();
  await refreshAreas({ redraw: true });
  await Promise.all([refreshOverview(), loadEntities().catch(() => {})]);
  startFeed();
}

function signOut(message = "") {
  page.feed?.stop();
  for (const timer of page.timers) clearInterval(timer);
  clearKey();
  $("board").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message;
  $("key").focus();
}

async function signIn(event) {
  event.preventDefault();
  const key = $("key").value.trim();
  if (!key) return;
  setKey(key);
  try {
    await api("/v1/overview");
  } catch (error) {
    clearKey();
    $("login-error").textContent =
      error instanceof ApiError ? t("keyRefused", { detail: error.message }) : t("apiUnreachable");
    return;
  }
  $("key").value = "";
  $("login-error").textContent = "";
  await start();
}

async function setUpNamespaces() {
  let names = [];
  try {
    names = await discoverNamespaces();
  } catch {
    names = [];
  }
  const wrap = $("ns-wrap");
  wrap.hidden = names.length === 0;
  if (!names.length) return;
  const select = $("ns");
  const current = getNamespace() || names[0];
  select.replaceChildren(
    ...names.map((name) => {
      const option = document.createElement("option");
      option.value = name;
      option.textContent = name;
      option.selected = name === current;
      return option;
    }),
  );
  setNamespace(current);
}

// --- language -----------------------------------------------------------------------

function relabel() {
  applyLabels();
  $("lang").textContent = t("switchTo");
  $("lang").lang = currentLang() === "vi" ? "en" : "vi";
  showConnection(page.connection.state, page.connection.retryMs);
  drawTiles();
  board.render();
  incidents.render();
  map.relabel();
  drawLayerButtons();
  if (page.entities.size) fillEntityOptions();
  detail.relabel();
  incident.relabel();
  area.relabel();
  if (page.areas.size) fillAreaOptions();
}

function drawLayerButtons() {
  const group = $("layers");
  const label = $("layers-label");
  const buttons = DOMAINS.map((domain) => {
    const b = document.createElement("button");
    b.type = "button";
    b.className = `layer layer-${domain}`;
    b.dataset.domain = domain;
    b.textContent = t(`domains.${domain}`);
    b.setAttribute("aria-pressed", String(!map.hidden.has(domain)));
    return b;
  });
  group.replaceChildren(label, ...buttons);
}

// --- the parts ----------------------------------------------------------------------

const map = new CityMap($("map"), {
  onSelect: (id, domain) => openDetail(id, domain),
  onArea: (id) => area.open(id),
});
const board = new AlertBoard({
  list: $("alert-list"),
  empty: $("alerts-empty"),
  count: $("alert-count"),
  announce: $("announce"),
  act: (id, action) => api(`/v1/alerts/${encodeURIComponent(id)}/${action}`, { method: "POST" }),
  open: (id, domain) => openDetail(id, domain),
  entityName: (id) => nameOf(page.entities.get(id)) || id,
  // Markers follow the list: an acknowledged or resolved alert recolours its entity.
  changed: () => {
    const now = new Set(board.all().map((a) => a.entity_id));
    for (const id of new Set([...page.alerted, ...now])) map.setState(id, markerState(id));
    page.alerted = now;
    area.alertsChanged();
  },
});
const detail = new DetailView({
  dialog: $("detail"),
  areaName: (id) => nameOf(page.areas.get(id)) || id,
  alertsOf: (id) => board.forEntity(id),
  onClose: () => map.setSelected(null),
});

const area = new AreaView({
  dialog: $("area"),
  area: (id) => page.areas.get(id),
  entitiesIn: (id) =>
    [...page.entities.values()]
      .filter((e) => inArea(e.id, id))
      .sort((a, b) => a.domain.localeCompare(b.domain) || nameOf(a).localeCompare(nameOf(b), currentLang())),
  alertsIn: (id) => board.all().filter((a) => inArea(a.entity_id, id)),
  liveOf: (id) => page.live.get(id) || null,
  newestIn,
  entityName: (id) => nameOf(page.entities.get(id)) || id,
  openEntity: (id, domain) => openDetail(id, domain),
  shown: (id) => map.setSelectedArea(id),
});
const areaSoon = throttle(() => area.refresh(), AREA_THROTTLE_MS, SINK_LAG_MS);

const readIncident = (id) => api(`/v1/incidents/${encodeURIComponent(id)}`);
const incidents = new IncidentBoard({
  list: $("incident-list"),
  empty: $("incidents-empty"),
  count: $("incident-count"),
  announce: $("announce"),
  read: readIncident,
  query: (params) => api("/v1/incidents", { params }),
  open: (id) => incident.open(id),
  areaName: (id) => nameOf(page.areas.get(id)) || id,
});
const incident = new IncidentView({
  dialog: $("incident"),
  read: readIncident,
  act: (id, path, body) =>
    api(`/v1/incidents/${encodeURIComponent(id)}/${path}`, { method: "POST", body }),
  areaName: (id) => nameOf(page.areas.get(id)) || id,
  entityName: (id) => nameOf(page.entities.get(id)) || id,
  openEntity: (id, domain) => openDetail(id, domain),
  changed: (shown) => incidents.replace(shown),
});

function openDetail(id, domain) {
  map.setSelected(id);
  detail.open(id, domain || page.entities.get(id)?.domain || "traffic");
}

function find(event) {
  event.preventDefault();
  const query = $("find-input").value.trim();
  if (!query) return;
  const byId = query.includes(" — ") ? query.split(" — ").pop() : query;
  const fold = (s) => s.normalize("NFD").replace(/[\u0300-\u036f]/g, "").replace(/đ/gi, "d").toLowerCase();
  const entity =
    page.entities.get(byId) ||
    [...page.entities.values()].find((e) => fold(e.name || "") === fold(query) || fold(e.name_vi || "") === fold(query));
  if (!entity) {
    $("find-error").textContent = t("notFound", { q: query });
    return;
  }
  $("find-error").textContent = "";
  openDetail(entity.id, entity.domain);
}

$("lang").addEventListener("click", () => {
  setLang(currentLang() === "vi" ? "en" : "vi");
  relabel();
});
$("logout").addEventListener("click", () => signOut());
$("login-form").addEventListener("submit", signIn);
$("find").addEventListener("submit", find);
$("area-find").addEventListener("submit", (event) => {
  event.preventDefault();
  if ($("area-select").value) area.open($("area-select").value);
});
$("layers").addEventListener("click", (event) => {
  const button = event.target.closest("button[data-domain]");
  if (!button) return;
  const visible = button.getAttribute("aria-pressed") !== "true";
  button.setAttribute("aria-pressed", String(visible));
  map.showDomain(button.dataset.domain, visible);
});
$("ns").addEventListener("change", async (event) => {
  setNamespace(event.target.value);
  page.states.clear();
  await loadAll();
});

setLang(currentLang());
relabel();
takeKeyFromUrl();
if (getKey()) {
  start();
} else {
  signOut();
}
