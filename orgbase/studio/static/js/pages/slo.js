// Availability, latency and error-budget burn for the org (admins) and the platform.
import { card, empty, errorBox, fmtDuration, fmtPercent, h, loading, replace } from "../ui.js";

function budgetBar(remaining) {
  const kind = remaining < 0.25 ? "bad" : remaining < 0.5 ? "warn" : "";
  const fill = h("span");
  fill.style.width = `${Math.round(remaining * 100)}%`; // CSSOM, allowed by the studio's CSP
  return h("div", { class: `bar ${kind}`, role: "meter", "aria-valuemin": "0", "aria-valuemax": "1", "aria-valuenow": String(remaining), "aria-label": "error budget remaining" }, fill);
}

function objectiveTable(report, kind) {
  const rows = Object.entries(report.windows).map(([name, w]) => {
    const o = w[kind];
    return h("tr", {},
      h("th", { scope: "row" }, name),
      h("td", {}, String(w.requests)),
      h("td", {}, String(kind === "availability" ? w.errors : w.slow)),
      h("td", {}, o.measured === null ? "–" : fmtPercent(o.measured, 3)),
      h("td", {}, fmtPercent(o.budget_consumed, 1)),
      h("td", {}, budgetBar(o.budget_remaining), fmtPercent(o.budget_remaining, 1)),
      h("td", {}, `${o.burn_rate}×`),
      h("td", {}, fmtDuration(o.seconds_to_exhaustion)));
  });
  const bad = kind === "availability" ? "errors (5xx)" : "slow";
  return h("div", { class: "table-wrap" }, h("table", {},
    h("thead", {}, h("tr", {}, ["window", "requests", bad, "measured", "budget used", "budget left", "burn rate", "exhausted in"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows)));
}

function report(title, data) {
  const o = data.objectives;
  const day = data.windows["24h"];
  return h("section", { class: "panel", "aria-label": title },
    h("h2", {}, title),
    h("div", { class: "cards" },
      card("Availability objective", fmtPercent(o.availability, 2), h("div", { class: "label" }, `24 h measured ${day.availability.measured === null ? "–" : fmtPercent(day.availability.measured, 3)}`)),
      card("Latency objective", `${Math.round(o.latency_target * 100)}% < ${o.latency_seconds * 1000} ms`, h("div", { class: "label" }, `24 h measured ${day.latency.measured === null ? "–" : fmtPercent(day.latency.measured, 2)}`))),
    h("h3", {}, "Availability"), objectiveTable(data, "availability"),
    h("h3", {}, "Latency"), objectiveTable(data, "latency"));
}

export const needsOrg = false;

export async function render(main, { api, user, org }) {
  const body = h("div", {}, loading("Reading the SLO figures…"));
  replace(main, h("h1", {}, "SLO and error budget"), body);
  const sections = [];
  try {
    if (org && ["owner", "admin"].includes(org.role)) sections.push(report(`Org ${org.name}`, await api.get(`/v1/orgs/${org.id}/slo`)));
    if (user.is_platform_admin) sections.push(report("Platform", await api.get("/v1/platform/slo")));
    replace(body, sections.length ? sections : empty("SLO figures are for org admins and platform admins."));
  } catch (error) {
    replace(body, errorBox(error));
  }
}
