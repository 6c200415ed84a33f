// The map: Quang Ninh's coastline and islands (Natural Earth 1:10m, cut at build time by
// deploy/geo/ into coastline.json), the zones and commune-level units over it from the
// registry's schematic polygons, entities as markers coloured by state. Inline SVG
// projected from latitude and longitude (an equirectangular projection scaled by
// cos(latitude): at 21° N over 200 km its error is below what 1:10m data shows). No tiles,
// no network but this API. A click on a commune, or on a zone's name or the part of a zone
// outside its communes, asks for that area's panel; zone names take the keyboard focus.

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
  constructor(svg, { onSelect, onArea }) {
    this.svg = svg;
    this.onSelect = onSelect;
    this.onArea = onArea;
    this.markers = new Map();
    this.communes = new Map();
    this.hidden = new Set();
    this.project = null;
    this.coastline = null;
    this.zones = [];
    this.counts = { zones: 0, communes: 0 };
    this.markerLayer = el("g", { class: "markers" });
    svg.addEventListener("click", (event) => {
      const marker = event.target.closest("[data-entity]");
      if (marker) {
        this.onSelect(marker.dataset.entity, marker.dataset.domain);
        return;
      }
      const area = event.target.closest("[data-area]");
      if (area) this.onArea(area.dataset.area);
    });
    svg.addEventListener("keydown", (event) => {
      const area = event.target.closest?.("[data-area][tabindex]");
      if (!area || (event.key !== "Enter" && event.key !== " ")) return;
      event.preventDefault();
      this.onArea(area.dataset.area);
    });
  }

  /** The land to draw under the areas (GeoJSON with a `bbox`); its box frames the map. */
  setCoastline(coastline) {
    this.coastline = coastline?.features?.length ? coastline : null;
  }

  /** The box the map shows: the coastline's, or else the areas' extent. */
  frame(areas) {
    if (this.coastline?.bbox) {
      const [west, south, east, north] = this.coastline.bbox;
      return { west, south, east, north };
    }
    const points = areas.flatMap((a) => (a.boundary.length ? a.boundary : [[a.lat, a.lon]]));
    if (!points.length) return null;
    const lats = points.map((p) => p[0]);
    const lons = points.map((p) => p[1]);
    return { south: Math.min(...lats), north: Math.max(...lats), west: Math.min(...lons), east: Math.max(...lons) };
  }

  /** Draw the coastline and the areas (from `/v1/areas`) and set the projection. */
  setAreas(areas) {
    this.svg.replaceChildren();
    this.communes.clear();
    this.zones = areas.filter((a) => a.kind === "zone");
    this.counts = { zones: this.zones.length, communes: 0 };
    this.markerLayer = el("g", { class: "markers" });
    const box = this.frame(areas);
    if (!box) {
      this.project = null; // an empty registry and no coastline: nothing to draw or place
      return;
    }
    const { west, south, east, north } = box;
    // The coastline's box is the map's edge (its land is cut there); the areas' extent gets
    // a margin.
    const pad = this.coastline ? 0 : PAD;
    const kx = Math.cos((((north + south) / 2) * Math.PI) / 180);
    const scale = (WIDTH - 2 * pad) / ((east - west) * kx);
    const height = Math.ceil((north - south) * scale + 2 * pad);
    this.project = ([lat, lon]) => [pad + (lon - west) * kx * scale, pad + (north - lat) * scale];
    this.svg.setAttribute("viewBox", `0 0 ${WIDTH} ${height}`);
    el("rect", { class: "sea", x: 0, y: 0, width: WIDTH, height }, this.svg);
    this.drawCoastline();
    // Zones are convex hulls around their communes: what of a zone lies outside its
    // communes (sea, the gaps) is its own click target, under the communes; its outline is
    // drawn over them and takes no clicks.
    const zoneHits = el("g", { class: "zone-hits" }, this.svg);
    this.communeLayer = el("g", { class: "communes" }, this.svg);
    this.zoneLayer = el("g", { class: "zones", "aria-hidden": "true" }, this.svg);
    this.svg.appendChild(this.markerLayer);
    // Zone names over the markers: they are the zones' handles for mouse and keyboard.
    this.labelLayer = el("g", { class: "labels" }, this.svg);
    for (const area of areas) {
      if (!area.boundary.length || area.kind === "province") continue;
      const points = area.boundary.map((p) => this.project(p).join(",")).join(" ");
      if (area.kind === "zone") {
        el("polygon", { class: "zone-hit", points, "data-area": area.id }, zoneHits);
        el("polygon", { class: "zone", points, "data-zone": area.id }, this.zoneLayer);
        continue;
      }
      const shape = el("polygon", { class: "commune", points }, this.communeLayer);
      shape.dataset.area = area.id;
      el("title", {}, shape).textContent = nameOf(area);
      this.communes.set(area.id, { area, shape });
      this.setAreaAlerts(area.id, area.alerts_open);
    }
    this.drawLabels();
    this.counts.communes = this.communes.size;
  }

  drawCoastline() {
    if (!this.coastline) return;
    const land = el("g", { class: "land", "aria-hidden": "true" }, this.svg);
    for (const feature of this.coastline.features) {
      const rings = feature.geometry.coordinates.flat();
      const d = rings
        .map((ring) => `M${ring.map(([lon, lat]) => this.project([lat, lon]).map((v) => v.toFixed(1)).join(",")).join("L")}Z`)
        .join("");
      el("path", { d, class: `coast coast-${feature.id.toLowerCase()}`, "data-country": feature.id }, land);
    }
  }

  drawLabels() {
    if (!this.project) return;
    this.labelLayer.replaceChildren();
    for (const zone of this.zones || []) {
      const [x, y] = this.project([zone.lat, zone.lon]);
      const label = el("text", { x, y, class: "zone-label", tabindex: "0", role: "button" }, this.labelLayer);
      label.dataset.area = zone.id;
      label.textContent = nameOf(zone);
      label.setAttribute("aria-label", t("openAreaOf", { name: nameOf(zone) }));
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

  /** Outline the area whose panel is open (a commune's shape, a zone's outline). */
  setSelectedArea(areaId) {
    for (const node of this.svg.querySelectorAll(".area-selected")) node.classList.remove("area-selected");
    if (!areaId) return;
    const shape = this.communes.get(areaId)?.shape || this.svg.querySelector(`.zones [data-zone="${CSS.escape(areaId)}"]`);
    shape?.classList.add("area-selected");
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
