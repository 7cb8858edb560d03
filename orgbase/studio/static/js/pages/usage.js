// An org's usage (org admins): requests by API family, rows, bytes, database time, per
// hour or day; platform admins also see the org's effective limits.
import { barChart, lineChart } from "../charts.js";
import { card, empty, errorBox, fmtBytes, h, loading, replace, select, table } from "../ui.js";

const FAMILIES = [
  ["requests_data", "Data requests"],
  ["requests_docs", "Document requests"],
  ["requests_kv", "Cache requests"],
  ["requests_realtime", "Realtime publishes"],
];
const SPANS = {
  "48h": { hours: 48, granularity: "hour" },
  "30d": { hours: 30 * 24, granularity: "day" },
};

function sum(rows, key) {
  return rows.reduce((total, row) => total + (row[key] || 0), 0);
}

/** Database time: "840 ms", "12.4 s", "3.2 min", "1.5 h". */
function fmtDuration(ms) {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(1)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

function latest(rows, key) {
  return rows.length ? rows[rows.length - 1][key] || 0 : 0;
}

/** A period with its day: "6 Dec, 08:00" per hour, "6 Dec" per day (24-hour clock). */
function periodLabel(iso, granularity) {
  const date = new Date(iso);
  const day = date.toLocaleDateString([], { day: "numeric", month: "short" });
  return granularity === "hour"
    ? `${day}, ${date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" })}`
    : day;
}

/** One point per hour or day of the span, zero where nothing was recorded. */
function timeline(rows, step, from, to) {
  const byStart = new Map(rows.map((r) => [new Date(r.period).getTime(), r]));
  const points = [];
  const start = new Date(from);
  if (step === "hour") start.setUTCMinutes(0, 0, 0); else start.setUTCHours(0, 0, 0, 0);
  for (let t = start.getTime(); t <= new Date(to).getTime(); t += (step === "hour" ? 3600 : 86400) * 1000) {
    const row = byStart.get(t);
    points.push({
      label: periodLabel(new Date(t).toISOString(), step),
      value: row ? FAMILIES.reduce((total, [key]) => total + (row[key] || 0), 0) : 0,
    });
  }
  return points;
}

function view(data) {
  const rows = data.usage;
  const step = data.granularity;
  const requests = timeline(rows, step, data.from, data.to);
  return [
    h("div", { class: "cards" },
      ...FAMILIES.map(([key, label]) => card(label, String(sum(rows, key)))),
      card("Rows read", String(sum(rows, "rows_read")), h("div", { class: "label" }, `written ${sum(rows, "rows_written")}`)),
      card("Response bytes", fmtBytes(sum(rows, "response_bytes"))),
      card("Database time", fmtDuration(sum(rows, "db_time_ms"))),
      card("Documents stored", fmtBytes(latest(rows, "documents_bytes"))),
      card("Cache stored", fmtBytes(latest(rows, "cache_bytes")))),
    h("div", { class: "panel" }, h("h2", {}, `Requests per ${step}`),
      lineChart(requests, { title: `Requests per ${step}` })),
    h("div", { class: "panel" }, h("h2", {}, "Requests by API family"),
      barChart(FAMILIES.map(([key, label]) => ({ label: label.split(" ")[0], value: sum(rows, key) })), { title: "Requests by API family" })),
    rows.length
      ? table([
        { label: step, class: "nowrap", render: (r) => periodLabel(r.period, step) },
        ...FAMILIES.map(([key, label]) => ({ label: label.split(" ")[0].toLowerCase(), key })),
        { label: "rows read", key: "rows_read" },
        { label: "rows written", key: "rows_written" },
        { label: "response bytes", render: (r) => fmtBytes(r.response_bytes) },
        { label: "database time", render: (r) => fmtDuration(r.db_time_ms || 0) },
        { label: "realtime messages", key: "realtime_messages" },
      ], rows.slice().reverse(), { caption: "Usage per period" })
      : empty("No usage recorded in this span yet."),
  ];
}

function limitsView(limits) {
  return h("div", { class: "panel" }, h("h2", {}, "Effective limits (platform admins)"),
    table([{ label: "limit", key: "name" }, { label: "value", key: "value" }],
      Object.entries(limits).map(([name, value]) => ({ name, value }))));
}

export const needsOrg = true;

export async function render(main, { api, user, org }) {
  if (!["owner", "admin"].includes(org.role)) {
    replace(main, h("h1", {}, "Usage"), empty("Usage is for the org's admins and owners."));
    return;
  }
  const body = h("div", {}, loading("Reading the usage…"));
  const span = select([["48h", "last 48 hours, per hour"], ["30d", "last 30 days, per day"]], "48h", { "aria-label": "Span" });
  replace(main, h("h1", {}, "Usage"), h("div", { class: "toolbar" }, span), body);
  async function show() {
    const { hours, granularity } = SPANS[span.value];
    const from = new Date(Date.now() - hours * 3600 * 1000).toISOString();
    try {
      const data = await api.get(`/v1/orgs/${org.id}/usage?from=${encodeURIComponent(from)}&granularity=${granularity}`);
      const parts = view(data);
      if (user.is_platform_admin) parts.push(limitsView(await api.get(`/v1/platform/orgs/${org.id}/limits`)));
      replace(body, parts);
    } catch (error) {
      replace(body, errorBox(error));
    }
  }
  span.addEventListener("change", show);
  await show();
}
