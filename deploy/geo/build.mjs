// Cuts Quang Ninh's coastline, islands and the land border with China out of Natural
// Earth's 1:10m countries (the npm package world-atlas, version pinned in package.json)
// and writes the dashboard's static api/dashboard/static/coastline.json.
//
//   npm ci && node build.mjs            write the file
//   node build.mjs --check              exit 1 when the vendored file differs from a build
//   node build.mjs --out PATH           write elsewhere (the unit test compares)
//
// Plain Node, no other package: TopoJSON arcs are decoded here (delta-encoded integers
// scaled by the topology's transform) and each ring is clipped to the province's box with
// Sutherland-Hodgman, which is exact for a rectangular window. What it leaves along the
// box's edges (zero-width runs where a concave ring left and came back) fills nothing.

import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const TARGET = resolve(HERE, "../../api/dashboard/static/coastline.json");
/** The province and its sea: Dong Trieu in the west to Mong Cai and Tra Co in the east,
 * Cat Ba and Co To in the south, the Chinese border in the north. */
const BOX = { west: 106.4, south: 20.6, east: 108.2, north: 21.7 };
/** ISO 3166-1 numeric ids of the countries kept, as world-atlas names them. */
const COUNTRIES = { 704: "VN", 156: "CN" };
/** 1e-4 degree is about 11 m; the data are quantized to 0.0036 x 0.0017 degrees. */
const DIGITS = 4;
/** Rings smaller than this (square degrees, about 0.01 km2) are clipping slivers. */
const MIN_AREA = 1e-6;

function decodeArcs(topology) {
  const [sx, sy] = topology.transform.scale;
  const [tx, ty] = topology.transform.translate;
  return topology.arcs.map((arc) => {
    let x = 0;
    let y = 0;
    return arc.map(([dx, dy]) => {
      x += dx;
      y += dy;
      return [x * sx + tx, y * sy + ty];
    });
  });
}

/** A closed ring from arc indexes (a negative index ~i is arc i reversed). */
function stitch(arcs, indexes) {
  const ring = [];
  for (const index of indexes) {
    const points = index >= 0 ? arcs[index] : [...arcs[~index]].reverse();
    ring.push(...(ring.length ? points.slice(1) : points));
  }
  return ring;
}

/** Sutherland-Hodgman against each side of the box in turn; the ring comes back open. */
function clip(ring) {
  const sides = [
    [(p) => p[0] >= BOX.west, (a, b) => cut(a, b, 0, BOX.west)],
    [(p) => p[0] <= BOX.east, (a, b) => cut(a, b, 0, BOX.east)],
    [(p) => p[1] >= BOX.south, (a, b) => cut(a, b, 1, BOX.south)],
    [(p) => p[1] <= BOX.north, (a, b) => cut(a, b, 1, BOX.north)],
  ];
  let points = ring.slice(0, -1);
  for (const [inside, crossing] of sides) {
    const kept = [];
    points.forEach((current, i) => {
      const previous = points[(i + points.length - 1) % points.length];
      if (inside(current)) {
        if (!inside(previous)) kept.push(crossing(previous, current));
        kept.push(current);
      } else if (inside(previous)) {
        kept.push(crossing(previous, current));
      }
    });
    points = kept;
    if (!points.length) break;
  }
  return points;
}

function cut(a, b, axis, value) {
  const f = (value - a[axis]) / (b[axis] - a[axis]);
  const point = [a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1])];
  point[axis] = value;
  return point;
}

function round(value) {
  return Number(value.toFixed(DIGITS));
}

/** Shoelace area, positive when counter-clockwise (lon east, lat north). */
function signedArea(points) {
  let sum = 0;
  points.forEach(([x1, y1], i) => {
    const [x2, y2] = points[(i + 1) % points.length];
    sum += x1 * y2 - x2 * y1;
  });
  return sum / 2;
}

/** Rounded, without repeats, closed, wound as RFC 7946 asks (outer counter-clockwise,
 * holes clockwise); null when nothing of it is left. */
function finish(points, outer) {
  const rounded = [];
  for (const [x, y] of points) {
    const p = [round(x), round(y)];
    const last = rounded[rounded.length - 1];
    if (!last || last[0] !== p[0] || last[1] !== p[1]) rounded.push(p);
  }
  while (rounded.length > 1 && rounded[0][0] === rounded.at(-1)[0] && rounded[0][1] === rounded.at(-1)[1]) rounded.pop();
  if (rounded.length < 3) return null;
  const area = signedArea(rounded);
  if (Math.abs(area) < MIN_AREA) return null;
  if (area > 0 !== outer) rounded.reverse();
  return [...rounded, rounded[0]];
}

function polygons(geometry) {
  if (geometry.type === "Polygon") return [geometry.arcs];
  if (geometry.type === "MultiPolygon") return geometry.arcs;
  return [];
}

function build(topology) {
  const arcs = decodeArcs(topology);
  const features = [];
  for (const geometry of topology.objects.countries.geometries) {
    const code = COUNTRIES[Number(geometry.id)];
    if (!code) continue;
    const coordinates = [];
    for (const rings of polygons(geometry)) {
      const [outer, ...holes] = rings.map((indexes, i) => finish(clip(stitch(arcs, indexes)), i === 0));
      if (outer) coordinates.push([outer, ...holes.filter(Boolean)]);
    }
    // Largest first: the mainland, then the islands by size.
    coordinates.sort((a, b) => Math.abs(signedArea(b[0])) - Math.abs(signedArea(a[0])));
    features.push({
      type: "Feature",
      id: code,
      properties: { country: code, name: geometry.properties.name },
      geometry: { type: "MultiPolygon", coordinates },
    });
  }
  features.sort((a, b) => (a.id === "VN" ? -1 : b.id === "VN" ? 1 : 0));
  return {
    type: "FeatureCollection",
    bbox: [BOX.west, BOX.south, BOX.east, BOX.north],
    source: {
      package: "world-atlas",
      version: packageVersion(),
      file: "countries-10m.json",
      data: "Natural Earth 1:10m Admin 0 countries, version 4.1.0",
      licence: "Natural Earth: public domain; world-atlas: ISC",
    },
    features,
  };
}

function packageVersion() {
  const require = createRequire(import.meta.url);
  return require("world-atlas/package.json").version;
}

function main(args) {
  const require = createRequire(import.meta.url);
  const topology = JSON.parse(readFileSync(require.resolve("world-atlas/countries-10m.json"), "utf8"));
  const text = `${JSON.stringify(build(topology))}\n`;
  if (args.includes("--check")) {
    const same = readFileSync(TARGET, "utf8") === text;
    console.log(same ? "coastline.json is up to date" : "coastline.json differs from a build: run node build.mjs");
    process.exit(same ? 0 : 1);
  }
  const at = args.indexOf("--out");
  const out = at >= 0 ? resolve(args[at + 1]) : TARGET;
  writeFileSync(out, text);
  console.log(`wrote ${out} (${text.length} bytes)`);
}

main(process.argv.slice(2));
