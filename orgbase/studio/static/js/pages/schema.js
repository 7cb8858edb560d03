// The operator's schema (org admins): tables of api with columns, policies and indexes,
// the policy linter's findings, and a runner for the functions served at /v1/db/rpc.
import { act, badge, empty, field, h, load, parseJson, replace, select, table } from "../ui.js";

function findings(lint) {
  if (!lint.length) return h("p", { class: "ok", "data-lint": "clean" }, "The policy linter finds nothing.");
  return table([
    { label: "level", render: (f) => badge(f.level, f.level === "error" ? "bad" : "warn") },
    { label: "rule", key: "rule" },
    { label: "object", key: "object" },
    { label: "problem", key: "message" },
    { label: "fix", render: (f) => h("code", {}, f.remedy) },
  ], lint, { caption: `${lint.length} finding(s) of orgbase lint` });
}

function tableSection(t) {
  const state = t.rls && t.forced ? badge("RLS forced", "ok") : badge("RLS off", "bad");
  return h("section", { class: "panel", "data-table": t.name, "aria-label": `table ${t.name}` },
    h("h2", {}, `api.${t.name} `, state, " ", t.preset ? badge(`preset ${t.preset}`) : badge("not a tenant table", "warn")),
    h("h3", {}, "Columns"),
    table([
      { label: "name", key: "name" },
      { label: "type", key: "type" },
      { label: "nullable", render: (c) => (c.nullable ? "yes" : "no") },
      { label: "default", render: (c) => (c.default ? h("code", {}, c.default) : "") },
    ], t.columns),
    h("h3", {}, "Policies"),
    t.policies.length ? table([
      { label: "name", key: "name" },
      { label: "command", key: "command" },
      { label: "roles", render: (p) => p.roles.join(", ") },
      { label: "using", render: (p) => (p.using ? h("code", {}, p.using) : "") },
      { label: "with check", render: (p) => (p.check ? h("code", {}, p.check) : "") },
    ], t.policies) : empty("No policies."),
    h("h3", {}, "Indexes"),
    t.indexes.length ? table([
      { label: "name", key: "name" },
      { label: "definition", render: (i) => h("code", {}, i.definition) },
    ], t.indexes) : empty("No indexes."));
}

function runner(api, functions) {
  if (!functions.length) return empty("No functions in the api schema are served.");
  const byName = Object.fromEntries(functions.map((f) => [f.name, f]));
  const picker = select(functions.map((f) => [f.name, `${f.name} (${f.volatility})`]), functions[0].name, { name: "function", "aria-label": "Function" });
  const signature = h("p", { class: "muted", "data-signature": "" });
  const args = h("textarea", { name: "arguments", rows: "4", "aria-label": "Arguments (JSON)" });
  const query = h("input", { name: "query", placeholder: "select=id,title&order=id", "aria-label": "Query string" });
  const output = h("pre", { class: "result", "data-rpc-result": "", "aria-live": "polite" });
  const errors = h("div");
  const describe = () => {
    const f = byName[picker.value];
    signature.textContent = `api.${f.name}(${f.arguments.map((a) => `${a.name || "body"} ${a.type}${a.required ? "" : " = default"}`).join(", ")}) → ${f.returns}`;
    const sample = Object.fromEntries(f.arguments.filter((a) => a.name).map((a) => [a.name, null]));
    args.value = JSON.stringify(sample, null, 2);
  };
  picker.addEventListener("change", describe);
  describe();
  const run = h("button", { class: "primary", type: "submit" }, "Call");
  const form = h("form", {
    onsubmit: async (event) => {
      event.preventDefault();
      replace(errors);
      await act(run, async () => {
        const body = args.value.trim() ? parseJson(args.value, "The arguments") : {};
        const path = `/v1/db/rpc/${encodeURIComponent(picker.value)}${query.value.trim() ? `?${query.value.trim()}` : ""}`;
        const answer = await api.post(path, body);
        output.textContent = answer === undefined || answer === null ? "(no result)" : JSON.stringify(answer, null, 2);
      }, errors);
    },
  }, field("Function", picker), signature, field("Arguments (JSON)", args),
  field("Filters, select, order (query string)", query), errors, run);
  return h("div", {}, form, output);
}

export async function render(main, { api, org }) {
  const body = h("div");
  replace(main, h("h1", {}, "Schema"), body);
  if (!["owner", "admin"].includes(org.role)) {
    replace(body, empty("The schema page is for org admins."));
    return;
  }
  await load(body, async () => {
    const schema = await api.get("/v1/db-schema");
    return [
      h("section", { class: "panel", "aria-label": "lint findings" }, h("h2", {}, "Policy linter"), findings(schema.lint)),
      h("section", { class: "panel", "aria-label": "functions" }, h("h2", {}, "Functions (RPC)"), runner(api, schema.functions)),
      schema.tables.map(tableSection),
    ];
  }, "Reading the schema…");
}
