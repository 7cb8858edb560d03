// Charts drawn as SVG by the studio itself (no chart library, no build step).

const SVG = "http://www.w3.org/2000/svg";

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/** A line over time: points are {label, value|null}; gaps where value is null. */
export function lineChart(points, { title, max = null, format = (v) => String(v) } = {}) {
  const width = 600, height = 180, left = 44, bottom = 22, top = 10;
  const values = points.map((p) => p.value).filter((v) => v !== null && v !== undefined);
  const top_ = max !== null ? max : Math.max(1, ...values);
  const x = (i) => left + (i * (width - left - 8)) / Math.max(1, points.length - 1);
  const y = (v) => top + (1 - v / top_) * (height - top - bottom);
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": title || "chart" });
  if (title) svg.append(s("title", {}, title));
  for (const frac of [0, 0.5, 1]) {
    svg.append(s("line", { class: "grid", x1: left, x2: width - 8, y1: y(top_ * frac), y2: y(top_ * frac) }));
    svg.append(s("text", { x: 2, y: y(top_ * frac) + 4 }, format(top_ * frac)));
  }
  let path = "";
  let area = "";
  points.forEach((p, i) => {
    if (p.value === null || p.value === undefined) return;
    const cmd = path && points[i - 1] && points[i - 1].value !== null ? "L" : "M";
    path += `${cmd}${x(i).toFixed(1)},${y(p.value).toFixed(1)}`;
  });
  if (path) {
    area = `${path}L${x(points.length - 1)},${y(0)}L${x(0)},${y(0)}Z`;
    if (values.length === points.length) svg.append(s("path", { class: "area", d: area }));
    svg.append(s("path", { class: "line", d: path }));
  }
  if (points.length) {
    // Both ends of the time axis, anchored inside the chart so long labels are not cut.
    svg.append(s("text", { class: "axis-x", x: left, y: height - 4 }, points[0].label));
    if (points.length > 1) {
      svg.append(s("text", { class: "axis-x", x: width - 8, y: height - 4, "text-anchor": "end" },
        points[points.length - 1].label));
    }
  }
  if (!values.length) svg.append(s("text", { x: width / 2 - 40, y: height / 2 }, "no data yet"));
  return svg;
}

/** Horizontal bars: items are {label, value}. */
export function barChart(items, { title, format = (v) => String(v) } = {}) {
  // Room for the labels at the larger text of a phone (see studio.css).
  const width = 600, row = 26, left = 120;
  const height = Math.max(row, items.length * row) + 6;
  const max = Math.max(1e-9, ...items.map((i) => i.value || 0));
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": title || "bars" });
  if (title) svg.append(s("title", {}, title));
  items.forEach((item, i) => {
    const w = ((item.value || 0) / max) * (width - left - 130);
    svg.append(s("text", { x: 0, y: i * row + 17 }, item.label));
    svg.append(s("rect", { class: "bar", x: left, y: i * row + 5, width: Math.max(1, w), height: 16, rx: 3 }));
    svg.append(s("text", { x: left + w + 6, y: i * row + 17 }, format(item.value)));
  });
  return svg;
}
