// Line charts drawn as SVG by our own code: one <path> per series, gaps where samples are
// missing, a few grid lines with their values, and the first and last sample's time.
"use strict";

const WIDTH = 480;
const HEIGHT = 180;
const LEFT = 52;
const RIGHT = 8;
const TOP = 8;
const BOTTOM = 22;

// Children of the page's own <svg> elements, in their namespace.
let namespace = null;

function svgElement(tag, attributes, text) {
  const node = document.createElementNS(namespace, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

// A round number at least `value`, so grid lines fall on readable values.
function niceCeiling(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (step * power >= value) return step * power;
  }
  return 10 * power;
}

function timeLabel(at) {
  return new Date(at * 1000).toLocaleTimeString();
}

// Path data for one series: a new "M" after a gap longer than `maxGap` seconds.
function pathData(points, x, y, maxGap) {
  let data = "";
  let previous = null;
  for (const [at, value] of points) {
    if (value === null || value === undefined) {
      previous = null;
      continue;
    }
    const move = previous === null || at - previous > maxGap;
    data += (move ? "M" : "L") + x(at).toFixed(1) + " " + y(value).toFixed(1) + " ";
    previous = at;
  }
  return data.trim();
}

// series: [{name, className, dashed, points: [[at, value], …]}]; format: value -> label.
export function drawChart(svg, series, { from, to, maxGap, format }) {
  namespace = svg.namespaceURI;
  const values = series.flatMap((line) => line.points.map(([, value]) => value))
    .filter((value) => value !== null && value !== undefined);
  const top = niceCeiling(Math.max(0, ...values));
  const span = Math.max(to - from, 1);
  const x = (at) => LEFT + ((at - from) / span) * (WIDTH - LEFT - RIGHT);
  const y = (value) => HEIGHT - BOTTOM - (value / top) * (HEIGHT - TOP - BOTTOM);
  const parts = [];
  for (const fraction of [0, 0.5, 1]) {
    const level = y(top * fraction);
    parts.push(svgElement("line", { x1: LEFT, x2: WIDTH - RIGHT, y1: level, y2: level,
      class: "grid" }));
    parts.push(svgElement("text", { x: LEFT - 4, y: level + 4, class: "axis",
      "text-anchor": "end" }, format(top * fraction)));
  }
  parts.push(svgElement("text", { x: LEFT, y: HEIGHT - 6, class: "axis" }, timeLabel(from)));
  parts.push(svgElement("text", { x: WIDTH - RIGHT, y: HEIGHT - 6, class: "axis",
    "text-anchor": "end" }, timeLabel(to)));
  for (const line of series) {
    const data = pathData(line.points, x, y, maxGap);
    if (!data) continue;
    const path = svgElement("path", { d: data, "data-series": line.name,
      class: "line " + line.className + (line.dashed ? " dashed" : "") });
    path.appendChild(svgElement("title", {}, line.name));
    parts.push(path);
  }
  svg.replaceChildren(...parts);
  svg.dataset.points = String(Math.max(0, ...series.map((line) => line.points.length)));
}

export function drawLegend(box, series) {
  box.replaceChildren(...series.map((line) => {
    const item = document.createElement("span");
    item.className = "key-item " + line.className + (line.dashed ? " dashed" : "");
    item.textContent = line.name;
    return item;
  }));
}
