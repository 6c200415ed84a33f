// The map: zones and commune-level units from the registry's boundary polygons, entities
// as markers coloured by state. Inline SVG projected from latitude and longitude (an
// equirectangular projection scaled by cos(latitude): at 21° N over 150 km the error is
// far below what a schematic hexagon boundary shows). No tiles, no network.

import { nameOf, t } from "./i18n.js";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 1000;
const PAD = 16;
/** Marker shapes per domain, so state colour is not the only thing that tells them apart. */
const SHAPES = {
  traffic: "M-5,0a5,5 0 1,0 10,0a5,5 0 1,0 -10,0",
  hospital: "M-2,-6h4v4h4v4h-4v4h-4v-4h-4v-4h4z",
  school: "M0,-6l6,10h-12z",
  security: "M0,-6l6,6l-6,6l-6,-6z",
};

function el(name, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (parent) parent.appendChild(node);
  return node;
}

export class CityMap {
  constructor(svg, { onSelect }) {
    this.svg = svg;
    this.onSelect = onSelect;
    this.markers = new Map();
    this.communes = new Map();
    this.hidden = new Set();
    this.project = null;
    this.zones = [];
    this.counts = { zones: 0, communes: 0 };
    this.markerLayer = el("g", { class: "markers" });
    svg.addEventListener("click", (event) => {
      const marker = event.target.closest("[data-entity]");
      if (marker) this.onSelect(marker.dataset.entity, marker.dataset.domain);
    });
  }

  /** Draw the areas (from `/v1/areas`) and set the projection from their extent. */
  setAreas(areas) {
    this.svg.replaceChildren();
    this.communes.clear();
    this.zones = areas.filter((a) => a.kind === "zone");
    this.counts = { zones: this.zones.length, communes: 0 };
    this.markerLayer = el("g", { class: "markers" });
    const points = areas.flatMap((a) => (a.boundary.length ? a.boundary : [[a.lat, a.lon]]));
    const lats = points.map((p) => p[0]);
    const lons = points.map((p) => p[1]);
    const [south, north] = [Math.min(...lats), Math.max(...lats)];
    const [west, east] = [Math.min(...lons), Math.max(...lons)];
    if (!points.length) {
      this.project = null; // an empty registry: nothing to draw, nothing to place
      return;
    }
    const kx = Math.cos((((north + south) / 2) * Math.PI) / 180);
    const scale = (WIDTH - 2 * PAD) / ((east - west) * kx);
    const height = Math.ceil((north - south) * scale + 2 * PAD);
    this.project = ([lat, lon]) => [PAD + (lon - west) * kx * scale, PAD + (north - lat) * scale];
    this.svg.setAttribute("viewBox", `0 0 ${WIDTH} ${height}`);
    this.communeLayer = el("g", { class: "communes" }, this.svg);
    this.zoneLayer = el("g", { class: "zones" }, this.svg);
    this.labelLayer = el("g", { class: "labels", "aria-hidden": "true" }, this.svg);
    this.svg.appendChild(this.markerLayer);
    for (const area of areas) {
      if (!area.boundary.length || area.kind === "province") continue;
      const layer = area.kind === "zone" ? this.zoneLayer : this.communeLayer;
      const shape = el(
        "polygon",
        { class: area.kind, points: area.boundary.map((p) => this.project(p).join(",")).join(" ") },
        layer,
      );
      shape.dataset.area = area.id;
      el("title", {}, shape).textContent = nameOf(area);
      if (area.kind === "commune") {
        this.communes.set(area.id, { area, shape });
        this.setAreaAlerts(area.id, area.alerts_open);
      }
    }
    this.drawLabels();
    this.counts.communes = this.communes.size;
  }

  drawLabels() {
    if (!this.project) return;
    this.labelLayer.replaceChildren();
    for (const zone of this.zones || []) {
      const [x, y] = this.project([zone.lat, zone.lon]);
      el("text", { x, y, class: "zone-label" }, this.labelLayer).textContent = nameOf(zone);
    }
    for (const { area, shape } of this.communes.values()) {
      shape.querySelector("title").textContent = nameOf(area);
    }
  }

  setAreaAlerts(areaId, count) {
    const commune = this.communes.get(areaId);
    if (commune) commune.shape.dataset.alerts = count > 1 ? "many" : String(count);
  }

  /** Place the registry's entities (id, domain, lat, lon, names). */
  setEntities(entities) {
    this.markerLayer.replaceChildren();
    this.markers.clear();
    if (!this.project) return;
    for (const entity of entities) {
      if (entity.lat == null || entity.lon == null) continue;
      const [x, y] = this.project([entity.lat, entity.lon]);
      const marker = el(
        "path",
        { d: SHAPES[entity.domain] || SHAPES.traffic, transform: `translate(${x.toFixed(1)},${y.toFixed(1)})`, class: "marker" },
        this.markerLayer,
      );
      marker.dataset.entity = entity.id;
      marker.dataset.domain = entity.domain;
      marker.dataset.state = "none";
      marker.toggleAttribute("hidden", this.hidden.has(entity.domain));
      el("title", {}, marker).textContent = nameOf(entity);
      this.markers.set(entity.id, { marker, entity });
    }
  }

  /** Colour one marker: none (no data), ok, warning, critical or acknowledged. */
  setState(entityId, state) {
    const found = this.markers.get(entityId);
    if (found && found.marker.dataset.state !== state) found.marker.dataset.state = state;
  }

  setSelected(entityId) {
    for (const node of this.markerLayer.querySelectorAll(".selected")) node.classList.remove("selected");
    const found = this.markers.get(entityId);
    if (found) {
      found.marker.classList.add("selected");
      this.markerLayer.appendChild(found.marker); // drawn last, above its neighbours
    }
  }

  showDomain(domain, visible) {
    if (visible) this.hidden.delete(domain);
    else this.hidden.add(domain);
    for (const { marker, entity } of this.markers.values()) {
      if (entity.domain === domain) marker.toggleAttribute("hidden", !visible);
    }
  }

  relabel() {
    this.drawLabels();
    for (const { marker, entity } of this.markers.values()) {
      marker.querySelector("title").textContent = nameOf(entity);
    }
  }

  summary(total) {
    const text = t("mapSummary", { ...this.counts, markers: this.markers.size });
    return total > this.markers.size ? `${text} ${t("mapCapped", { markers: this.markers.size, total })}` : text;
  }
}
