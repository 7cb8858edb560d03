// Health of the backing services (readiness) and the current org at a glance.
import { badge, card, errorBox, h, loading, replace } from "../ui.js";

export const needsOrg = false;

function dependencyCard(name, check) {
  const pool = check.pools ? check.pools.api : check.pool;
  const poolText = pool
    ? Object.entries(pool).map(([k, v]) => `${k} ${v}`).join(" · ")
    : "";
  // The webhooks check is a queue, not a connection: its figures instead of a latency.
  const headline = typeof check.latency_ms === "number"
    ? `${check.latency_ms} ms`
    : "due" in check ? `${check.due} due` : check.status;
  const queue = "due" in check
    ? h("div", { class: "label" }, `oldest due ${check.oldest_due_seconds ?? 0} s · ${check.delivering ? "delivering here" : "not delivering here"}`)
    : null;
  return h("div", { class: "card", "data-dependency": name },
    h("div", { class: "row" }, h("strong", {}, name), badge(check.status)),
    h("div", { class: "value" }, headline),
    queue,
    "breaker" in check || typeof check.latency_ms === "number"
      ? h("div", { class: "label" }, "breaker ", check.breaker ? badge(check.breaker) : "–") : null,
    poolText ? h("div", { class: "label" }, "pool: ", poolText) : null,
    // Outside dev and test the public readiness answer has statuses and latencies only.
    typeof check.errors_24h === "number"
      ? h("div", { class: "label" }, `errors in the last 24 h: ${check.errors_24h}`) : null,
    check.error ? h("div", { class: "error" }, check.error) : null);
}

export function render(main, { org, onStop }) {
  const body = h("div", {}, loading("Checking PostgreSQL, Redis and MongoDB…"));
  const stamp = h("p", { class: "muted" });
  replace(main, h("h1", {}, "Overview"), stamp, body);
  const refresh = async () => {
    try {
      // 503 still carries the checks (PostgreSQL down): read the body either way.
      const response = await fetch("/health/ready", { headers: { Accept: "application/json" } });
      const ready = await response.json();
      stamp.textContent = `Checked ${new Date().toLocaleTimeString()}; refreshes every 10 s.`;
      replace(body,
        h("div", { class: "cards" },
          card("Platform", badge(ready.status)),
          org ? card("Org", org.name, h("div", { class: "label" }, `your role: ${org.role}`)) : null),
        h("h2", {}, "Dependencies"),
        h("div", { class: "cards" },
          Object.entries(ready.checks).map(([name, check]) => dependencyCard(name, check))));
    } catch (error) {
      replace(body, errorBox(error));
    }
  };
  refresh();
  const timer = setInterval(refresh, 10000);
  onStop(() => clearInterval(timer));
}
