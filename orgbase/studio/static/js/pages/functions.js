// The operator's functions: each function's access, triggers and schedule; a form to
// invoke one as yourself; the org's recent invocations (a row opens its ctx.log lines) and
// its dead events (retry). Platform admins also see the schedules, the workers and the
// tracebacks, which never reach a function's caller.
import { act, badge, cell, empty, errorBox, field, fmtDate, h, loading, replace, select, table } from "../ui.js";

const when = (iso) => fmtDate(iso);

function functionsTable(functions) {
  return table([
    { label: "Name", render: (f) => h("code", {}, f.name) },
    { label: "Methods", render: (f) => f.methods.join(" ") },
    { label: "Who may call", render: (f) => (f.access === "public" ? "anyone with the publishable key" : `${f.min_role}+${f.api_keys ? ", API keys" : ""}${f.aal === "aal2" ? ", aal2" : ""}`) },
    { label: "Triggers", render: (f) => f.triggers.join(", ") },
    { label: "Schedule", render: (f) => (f.schedule ? h("code", {}, f.schedule) : "") },
    { label: "State", render: (f) => badge(f.usable ? "ok" : "broken", f.usable ? "good" : "bad") },
  ], functions, { caption: `${functions.length} functions` });
}

function logLines(row) {
  const lines = row.logs || [];
  return h("tr", { class: "detail" }, h("td", { colspan: "8" },
    lines.length ? h("pre", {}, lines.map((l) => `${l.level} ${l.message} ${JSON.stringify(Object.fromEntries(Object.entries(l).filter(([k]) => !["level", "message"].includes(k))))}`).join("\n"))
      : h("p", { class: "muted" }, "No ctx.log lines."),
    row.error ? h("pre", { class: "error" }, row.error) : null));
}

function invocationsTable(rows) {
  const view = table([
    { label: "When", render: (r) => when(r.created_at) },
    { label: "Function", render: (r) => h("code", {}, r.function) },
    { label: "Kind", key: "kind" },
    { label: "Status", key: "status" },
    { label: "Outcome", render: (r) => badge(r.outcome, r.outcome === "ok" ? "good" : "bad") },
    { label: "ms", key: "duration_ms" },
    { label: "CPU ms", key: "cpu_ms" },
    { label: "Request", render: (r) => h("code", { class: "rid" }, r.request_id || "") },
  ], rows, {
    onRow: (row) => {
      const tr = [...view.querySelectorAll("tbody tr")][rows.indexOf(row)];
      if (tr.nextElementSibling && tr.nextElementSibling.classList.contains("detail")) tr.nextElementSibling.remove();
      else tr.after(logLines(row));
    },
  });
  view.id = "functions-invocations";
  return view;
}

function deadTable(api, org, rows, reload) {
  if (!rows.length) return empty("No dead events: every event reached its function.");
  return table([
    { label: "Created", render: (d) => when(d.created_at) },
    { label: "Function", render: (d) => h("code", {}, d.function) },
    { label: "Event", render: (d) => h("code", {}, d.event_type) },
    { label: "Attempts", key: "attempts" },
    { label: "Last error", render: (d) => cell(d.last_error) },
    { label: "", render: (d) => h("button", { type: "button", onclick: (e) => act(e.target, async () => {
      await api.post(`/v1/orgs/${org.id}/functions/deliveries/${d.id}/retry`, {});
      await reload();
    }) }, "Retry") },
  ], rows);
}

function tryIt(api, functions) {
  const names = functions.filter((f) => f.usable).map((f) => f.name);
  if (!names.length) return null;
  const name = select(names, names[0], { "aria-label": "Function", id: "functions-try-name" });
  const body = h("textarea", { rows: "3", id: "functions-try-body", "aria-label": "JSON body" }, "{}");
  const out = h("pre", { id: "functions-try-answer" });
  const errors = h("div");
  const send = h("button", { type: "submit" }, "Invoke");
  const run = async () => {
    const spec = functions.find((f) => f.name === name.value);
    const method = spec.methods.includes("POST") ? "POST" : spec.methods[0];
    const response = await api.call(method, `/functions/v1/${encodeURIComponent(name.value)}`,
      { body: method === "GET" ? undefined : JSON.parse(body.value || "{}"), raw: true });
    out.textContent = `${response.status}\n${await response.text()}`;
  };
  return h("section", { class: "panel" }, h("h2", {}, "Invoke as yourself"),
    h("form", { class: "row", id: "functions-try", onsubmit: (e) => { e.preventDefault(); act(send, run, errors); } },
      field("Function", name), field("Body", body), send), errors, out);
}

function operatorView(data) {
  const schedules = Object.entries(data.schedules || {});
  return h("section", { class: "panel", id: "functions-operator" }, h("h2", {}, "Platform: workers and schedules"),
    h("p", {}, `Workers live: ${data.workers.live} (started ${data.workers.started}, lost ${data.workers.lost}, killed ${data.workers.killed})`),
    schedules.length ? table([
      { label: "Function", render: ([n]) => h("code", {}, n) },
      { label: "Schedule", render: ([, s]) => h("code", {}, s.schedule) },
      { label: "Next tick", render: ([, s]) => when(s.next_tick) },
    ], schedules) : empty("No schedule runs on this gateway."),
    (data.schedule_runs || []).length ? table([
      { label: "Tick", render: (r) => when(r.tick) },
      { label: "Function", render: (r) => h("code", {}, r.function) },
      { label: "Status", render: (r) => badge(r.status, r.status === "done" ? "good" : "bad") },
      { label: "Gateway", key: "gateway" },
      { label: "Detail", render: (r) => cell(r.detail) },
    ], data.schedule_runs, { caption: "Recent ticks" }) : null,
    h("h3", {}, "Errors (with tracebacks)"),
    invocationsTable(data.invocations));
}

export function render(main, { api, org, user }) {
  if (!["owner", "admin"].includes(org.role) && !user.is_platform_admin) {
    replace(main, h("h1", {}, "Functions"), empty("The functions' invocations are for the org's admins."));
    return;
  }
  const failedOnly = h("input", { type: "checkbox", id: "functions-failed" });
  const body = h("div", {}, loading("Reading the functions…"));
  async function load() {
    const query = failedOnly.checked ? "?failed=true" : "";
    const data = await api.get(`/v1/orgs/${org.id}/functions${query}`);
    const dead = await api.get(`/v1/orgs/${org.id}/functions/deliveries?status=dead`);
    const sections = [
      functionsTable(data.functions),
      tryIt(api, data.functions),
      h("h2", {}, "Recent invocations"),
      field("Failed only", failedOnly),
      data.invocations.length ? invocationsTable(data.invocations) : empty("No invocations yet."),
      h("h2", {}, "Dead events"),
      deadTable(api, org, dead.deliveries, () => load().catch((e) => replace(body, errorBox(e)))),
    ];
    if (user.is_platform_admin) sections.push(operatorView(await api.get("/v1/platform/functions?failed=true")));
    replace(body, ...sections);
  }
  failedOnly.addEventListener("change", () => load().catch((e) => replace(body, errorBox(e))));
  replace(main, h("h1", {}, "Functions"), body);
  load().catch((error) => replace(body, errorBox(error)));
}
