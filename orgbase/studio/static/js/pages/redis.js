// The Redis dashboard: platform admins see the whole server, org admins their org's slice.
import { lineChart, barChart } from "../charts.js";
import { badge, card, empty, errorBox, fmtBytes, fmtDate, fmtPercent, h, loading, replace, table } from "../ui.js";

const EVERY_MS = 5000;

function hitRateChart(series) {
  const points = series.map((p) => ({
    label: new Date(p.minute * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }),
    value: p.hit_rate,
  }));
  return lineChart(points, { title: "Cache hit rate per minute, last hour", max: 1, format: (v) => `${Math.round(v * 100)}%` });
}

function latencyChart(latency) {
  const items = ["p50_ms", "p95_ms", "p99_ms"].map((k) => ({ label: k.replace("_ms", ""), value: latency[k] || 0 }));
  return barChart(items, { title: "Redis command latency", format: (v) => `${(v || 0).toFixed(2)} ms` });
}

function hotKeys(keys) {
  return keys.length
    ? table([{ label: "key", key: "key" }, { label: "hits (recent minutes)", key: "hits" }], keys.slice(0, 10))
    : empty("No key has been read recently.");
}

function alerts(list) {
  return list.length
    ? table([
      { label: "when", render: (a) => fmtDate(new Date(a.at * 1000).toISOString()) },
      { label: "kind", render: (a) => badge(a.kind, a.kind.includes("closed") ? "ok" : "warn") },
      { label: "message", key: "message" },
    ], list.slice(-20).reverse())
    : empty("No alert recently.");
}

function lastHitRate(series) {
  const known = series.filter((p) => p.hit_rate !== null);
  return known.length ? fmtPercent(known[known.length - 1].hit_rate, 1) : "–";
}

function platformView(d) {
  if (d.status !== "ok") {
    return [h("div", { class: "cards" }, card("Redis", badge("down")), card("Breaker", badge(d.breaker))),
      errorBox({ message: d.error || "Redis does not answer" }), h("h2", {}, "Recent alerts"), alerts(d.alerts || [])];
  }
  const pool = d.pool || {};
  return [
    h("div", { class: "cards" },
      card("Status", badge(d.status), h("div", { class: "label" }, `breaker `, badge(d.breaker))),
      card("Hit rate (last minute)", lastHitRate(d.hit_rate), h("div", { class: "label" }, `server-wide ${fmtPercent(d.server_hit_rate, 1)}`)),
      card("Memory", fmtBytes(d.memory.used_memory), h("div", { class: "label" }, `max ${d.memory.maxmemory ? fmtBytes(d.memory.maxmemory) : "unset"} · peak ${fmtBytes(d.memory.used_memory_peak)}`)),
      card("Clients", String(d.clients.connected_clients), h("div", { class: "label" }, `blocked ${d.clients.blocked_clients}`)),
      card("Pool", `${pool.in_use ?? "–"} in use`, h("div", { class: "label" }, Object.entries(pool).map(([k, v]) => `${k} ${v}`).join(" · "))),
      card("Replication", d.replication.role, h("div", { class: "label" }, `${d.replication.replicas.length} replicas · failovers seen ${d.failovers_seen}`))),
    h("div", { class: "panel" }, h("h2", {}, "Hit rate"), hitRateChart(d.hit_rate)),
    h("div", { class: "panel" }, h("h2", {}, "Latency"), latencyChart(d.latency), h("p", { class: "muted" }, `${d.latency.samples} samples in the last minutes`)),
    h("h2", {}, "Top 10 hot keys"), hotKeys(d.hot_keys),
    h("h2", {}, "Sentinels"),
    table([{ label: "sentinel", key: "sentinel" }, { label: "status", render: (s) => badge(s.status === "ok" ? "ok" : "down") }, { label: "primary", key: "primary" }], d.sentinels || []),
    h("h2", {}, "Recent alerts"), alerts(d.alerts || []),
  ];
}

function orgView(d) {
  return [
    h("div", { class: "cards" },
      card("Cache keys", String(d.keys)),
      card("Hit rate (last minute)", lastHitRate(d.hit_rate)),
      card("Latency p95", d.latency.p95_ms === null || d.latency.p95_ms === undefined ? "–" : `${d.latency.p95_ms.toFixed(2)} ms`)),
    h("div", { class: "panel" }, h("h2", {}, "Hit rate"), hitRateChart(d.hit_rate)),
    h("div", { class: "panel" }, h("h2", {}, "Latency"), latencyChart(d.latency)),
    h("h2", {}, "Top 10 hot keys"), hotKeys(d.hot_keys),
  ];
}

export const needsOrg = false;

export function render(main, { api, user, org, onStop }) {
  const platform = user.is_platform_admin;
  if (!platform && (!org || !["owner", "admin"].includes(org.role))) {
    replace(main, h("h1", {}, "Redis"), empty("The Redis dashboard is for org admins (their org's figures) and platform admins."));
    return;
  }
  const body = h("div", {}, loading("Reading Redis figures…"));
  const stamp = h("p", { class: "muted", id: "redis-updated" });
  replace(main, h("h1", {}, platform ? "Redis (platform)" : `Redis (${org.name})`), stamp, body);
  let stopped = false;
  async function refresh() {
    try {
      const data = platform ? await api.get("/v1/platform/redis") : await api.get(`/v1/orgs/${org.id}/redis`);
      if (stopped) return;
      replace(body, platform ? platformView(data) : orgView(data));
      stamp.textContent = `Updated ${new Date().toLocaleTimeString()}; refreshes every 5 s.`;
      stamp.dataset.updates = String(Number(stamp.dataset.updates || 0) + 1);
    } catch (error) {
      replace(body, errorBox(error));
    }
  }
  refresh();
  const timer = setInterval(refresh, EVERY_MS);
  onStop(() => { stopped = true; clearInterval(timer); });
}
