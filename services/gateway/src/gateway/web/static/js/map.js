// The map of stations, their 15-minute circles and the village unions, drawn as SVG.
//
// There is no tile server offline, so the map is the points themselves on a plain ground:
// lon/lat are projected equirectangularly around the middle of the area (x scaled by
// cos(latitude)), which at county scale (tens of km) distorts distances by well under 1%.
// Coordinates are in metres before one uniform scale to pixels, so a circle of radius_m
// metres is drawn with its true radius, and the scale bar measures the same metres.

import { svg } from "./charts.js";
import { distance, number } from "./format.js";
import { label, t } from "./i18n.js";

const EARTH_RADIUS_M = 6371008.8; // the mean radius, as the great-circle distances use
const METRES_PER_DEGREE = (EARTH_RADIUS_M * Math.PI) / 180;
const SCALE_STEPS = [50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000, 20000, 25000, 50000];
const LABEL_LIMIT = 80; // more points than this and names go to the hover text only
const MARKER_RADIUS = 7; // half the size of a drawn marker, in pixels

/** A projection to metres east/south of the mean point of `places`. */
export function projection(places) {
  const lat0 = places.reduce((sum, p) => sum + p.lat, 0) / places.length;
  const lon0 = places.reduce((sum, p) => sum + p.lon, 0) / places.length;
  const cosLat = Math.cos((lat0 * Math.PI) / 180);
  return (place) => ({
    x: (place.lon - lon0) * cosLat * METRES_PER_DEGREE,
    y: -(place.lat - lat0) * METRES_PER_DEGREE,
  });
}

/** The longest round distance whose bar fits in `maxPixels` at `pixelsPerMetre`. */
export function scaleLength(pixelsPerMetre, maxPixels) {
  let best = SCALE_STEPS[0];
  for (const step of SCALE_STEPS) {
    if (step * pixelsPerMetre <= maxPixels) best = step;
  }
  return best;
}

function overlaps(a, b) {
  return a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;
}

/**
 * Name the points where a name fits: right of the point, else left, above or below; a
 * name that would cover another name or marker is left to the hover text. Needs the SVG
 * in the document (it measures the text).
 */
function placeLabels(layer, labels, markers, width, height) {
  const taken = markers.map(({ x, y }) => ({
    x0: x - MARKER_RADIUS,
    y0: y - MARKER_RADIUS,
    x1: x + MARKER_RADIUS,
    y1: y + MARKER_RADIUS,
  }));
  const gap = MARKER_RADIUS + 3;
  for (const label of labels) {
    const text = svg("text", { class: label.className }, label.text);
    layer.append(text);
    const spots = [
      [gap, 4, "start"],
      [-gap, 4, "end"],
      [0, -gap, "middle"],
      [0, gap + 10, "middle"],
    ];
    const fits = spots.some(([dx, dy, anchor]) => {
      text.setAttribute("x", label.x + dx);
      text.setAttribute("y", label.y + dy);
      text.setAttribute("text-anchor", anchor);
      const b = text.getBBox();
      const box = { x0: b.x - 2, y0: b.y - 1, x1: b.x + b.width + 2, y1: b.y + b.height + 1 };
      const inside = box.x0 >= 0 && box.y0 >= 0 && box.x1 <= width && box.y1 <= height;
      if (!inside || taken.some((other) => overlaps(other, box))) return false;
      taken.push(box);
      return true;
    });
    if (!fits) text.remove();
  }
}

function legendItem(className, shape, text) {
  const li = document.createElement("li");
  const swatch = svg("svg", { viewBox: "0 0 20 20", class: "swatch", "aria-hidden": "true" }, shape);
  const span = document.createElement("span");
  span.textContent = text;
  li.append(swatch, span);
  li.className = className;
  return li;
}

function legend() {
  const list = document.createElement("ul");
  list.className = "map-legend";
  list.setAttribute("aria-label", t("map.legend"));
  list.append(
    legendItem("legend-station", svg("rect", { x: 5, y: 5, width: 10, height: 10, transform: "rotate(45 10 10)", class: "station active" }), t("map.legend.station_active")),
    legendItem("legend-station-inactive", svg("rect", { x: 5, y: 5, width: 10, height: 10, transform: "rotate(45 10 10)", class: "station inactive" }), t("map.legend.station_inactive")),
    legendItem("legend-circle", svg("circle", { cx: 10, cy: 10, r: 8, class: "service-circle" }), t("map.legend.circle")),
    legendItem("legend-covered", svg("circle", { cx: 10, cy: 10, r: 5, class: "village covered" }), t("map.legend.covered")),
    legendItem("legend-uncovered", svg("circle", { cx: 10, cy: 10, r: 5, class: "village uncovered" }), t("map.legend.uncovered")),
  );
  return list;
}

/** Draw `data` (GET /v1/dashboard/map) into `container`. */
export function drawMap(container, data) {
  const stations = data.stations;
  const located = data.villages.filter((v) => v.lon !== null && v.lat !== null);
  const unlocated = data.villages.length - located.length;
  const radius = data.radius_m;
  const parts = [];

  const hint = document.createElement("p");
  hint.className = "map-hint";
  hint.textContent = t("map.hint", { minutes: number(data.minutes), radius: distance(radius) });
  parts.push(hint);

  if (!stations.length && !located.length) {
    const p = document.createElement("p");
    p.className = "chart-empty";
    p.textContent = t("map.empty");
    container.replaceChildren(...parts, p);
    return;
  }

  const project = projection([...stations, ...located]);
  const stationPoints = stations.map((s) => ({ ...s, ...project(s), active: s.status === "active" }));
  const villagePoints = located.map((v) => ({ ...v, ...project(v) }));

  // The extent in metres: whole circles around active stations, and the village points.
  const extent = { x0: Infinity, x1: -Infinity, y0: Infinity, y1: -Infinity };
  const grow = (x, y, r) => {
    extent.x0 = Math.min(extent.x0, x - r);
    extent.x1 = Math.max(extent.x1, x + r);
    extent.y0 = Math.min(extent.y0, y - r);
    extent.y1 = Math.max(extent.y1, y + r);
  };
  for (const s of stationPoints) grow(s.x, s.y, s.active ? radius : radius / 4);
  for (const v of villagePoints) grow(v.x, v.y, radius / 4);
  const spanX = Math.max(extent.x1 - extent.x0, radius * 2);
  const spanY = Math.max(extent.y1 - extent.y0, radius * 2);

  const width = 1160;
  const pad = 28;
  const footer = 44; // room for the scale bar under the points
  const height = Math.round(Math.min(720, Math.max(420, (width * spanY) / spanX + footer)));
  const k = Math.min((width - 2 * pad) / spanX, (height - 2 * pad - footer) / spanY);
  const cx = (extent.x0 + extent.x1) / 2;
  const cy = (extent.y0 + extent.y1) / 2;
  const px = (x) => width / 2 + (x - cx) * k;
  const py = (y) => (height - footer) / 2 + (y - cy) * k;

  const root = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    class: "map",
    role: "img",
    "aria-label": t("map.aria"),
    "data-pixels-per-metre": k.toFixed(6),
  });
  root.append(svg("rect", { x: 0, y: 0, width, height, class: "map-ground" }));

  const circles = svg("g", { class: "circles" });
  const villages = svg("g", { class: "villages" });
  const markers = svg("g", { class: "stations" });
  const labels = svg("g", { class: "labels" });
  const stationLabels = [];
  const villageLabels = [];

  for (const s of stationPoints) {
    if (!s.active) continue; // only active stations make a circle, as the coverage counts
    circles.append(
      svg("circle", {
        cx: px(s.x), cy: py(s.y), r: radius * k, class: "service-circle", "data-station-id": s.id,
        "data-radius-m": radius,
      }),
    );
  }
  for (const v of villagePoints) {
    const key = v.covered ? "map.village_covered" : v.nearest_station_m === null ? "map.village_no_station" : "map.village_uncovered";
    const name = v.name ?? t("children.unnamed");
    villages.append(
      svg(
        "g",
        { class: `village-point ${v.covered ? "covered" : "uncovered"}`, "data-org-id": v.org_id },
        svg("title", {}, t(key, { name, distance: distance(v.nearest_station_m) })),
        svg("circle", { cx: px(v.x), cy: py(v.y), r: 5, class: `village ${v.covered ? "covered" : "uncovered"}` }),
      ),
    );
    villageLabels.push({ x: px(v.x), y: py(v.y), text: name, className: "map-label" });
  }
  for (const s of stationPoints) {
    const status = label("station_status", s.status);
    const type = label("station_type", s.station_type);
    markers.append(
      svg(
        "g",
        { class: `station-point ${s.active ? "active" : "inactive"}`, "data-station-id": s.id },
        svg("title", {}, t("map.station_title", { name: s.name, type, status })),
        svg("rect", {
          x: px(s.x) - 7, y: py(s.y) - 7, width: 14, height: 14,
          transform: `rotate(45 ${px(s.x)} ${py(s.y)})`,
          class: `station ${s.active ? "active" : "inactive"}`,
        }),
      ),
    );
    stationLabels.push({ x: px(s.x), y: py(s.y), text: s.name, className: "map-label station-label" });
  }
  // Villages over stations: an uncovered village next to a closed station stays visible.
  root.append(circles, markers, villages, labels);

  // Scale bar (bottom left) and north arrow (top right).
  const metres = scaleLength(k, width / 4);
  const barPixels = metres * k;
  const x0 = pad;
  const y0 = height - 18;
  root.append(
    svg(
      "g",
      { class: "scale-bar", "data-metres": metres },
      svg("rect", { x: x0 - 6, y: y0 - 26, width: barPixels + 12, height: 34, rx: 3, class: "scale-bg" }),
      svg("path", { d: `M${x0} ${y0 - 6} V${y0} H${x0 + barPixels} V${y0 - 6}`, class: "scale-line" }),
      svg("text", { x: x0 + barPixels / 2, y: y0 - 10, "text-anchor": "middle", class: "scale-label" }, distance(metres)),
    ),
    svg(
      "g",
      { class: "north-arrow" },
      svg("path", { d: `M${width - 30} 18 l8 22 l-8 -6 l-8 6 z`, class: "north" }),
      svg("text", { x: width - 30, y: 56, "text-anchor": "middle", class: "scale-label" }, t("map.north")),
    ),
  );

  parts.push(root, legend());
  if (unlocated) {
    const note = document.createElement("p");
    note.className = "map-note";
    note.textContent = t("map.unlocated", { count: number(unlocated) });
    parts.push(note);
  }
  container.replaceChildren(...parts);
  const named = [...stationLabels, ...villageLabels];
  if (named.length <= LABEL_LIMIT) placeLabels(labels, named, named, width, height);
}
