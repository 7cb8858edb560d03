// The org's audit log: filters (action, actor, table, time range) and cursor pages.
import { act, empty, field, fmtDate, h, loading, replace, errorBox } from "../ui.js";

export function render(main, { api, org }) {
  if (!["owner", "admin"].includes(org.role)) {
    replace(main, h("h1", {}, "Audit log"), empty("The audit log is for the org's admins."));
    return;
  }
  const action = h("input", { "aria-label": "Action", placeholder: "e.g. member.* or row.update" });
  const actor = h("input", { "aria-label": "Actor user id", placeholder: "user id" });
  const tableName = h("input", { "aria-label": "Table", placeholder: "api.items" });
  const since = h("input", { type: "datetime-local", "aria-label": "Since" });
  const until = h("input", { type: "datetime-local", "aria-label": "Until" });
  const results = h("div");
  const more = h("div", { class: "row" });
  const cursors = [];

  function query(before) {
    const q = new URLSearchParams({ limit: "25" });
    if (action.value) q.set("action", action.value);
    if (actor.value) q.set("actor", actor.value.trim());
    if (tableName.value) q.set("table", tableName.value.trim());
    if (since.value) q.set("since", new Date(since.value).toISOString());
    if (until.value) q.set("until", new Date(until.value).toISOString());
    if (before) q.set("before", String(before));
    return q.toString();
  }

  async function page(before) {
    replace(results, loading("Reading the audit log…"));
    replace(more);
    try {
      const data = await api.get(`/v1/orgs/${org.id}/audit?${query(before)}`);
      replace(results, data.items.length ? h("div", { class: "table-wrap" }, h("table", {},
        h("thead", {}, h("tr", {}, ["when", "action", "actor", "table", "row", "change", "request"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, data.items.map((e) => h("tr", {},
          h("td", {}, fmtDate(e.occurred_at)), h("td", {}, h("code", {}, e.action)),
          h("td", {}, e.actor_user_id ? h("code", {}, e.actor_user_id) : e.actor_kind),
          h("td", {}, e.target_table || ""), h("td", {}, e.row_key ? h("code", {}, JSON.stringify(e.row_key)) : ""),
          h("td", {}, h("pre", {}, JSON.stringify(e.new_values || e.details || e.old_values || {}, null, 1))),
          h("td", {}, h("code", {}, e.request_id || ""))))))) : empty("No audit event matches."));
      replace(more,
        h("button", { type: "button", disabled: cursors.length === 0, onclick: () => page(cursors.pop()) }, "‹ Newer"),
        h("button", { type: "button", disabled: !data.next_cursor, onclick: () => { cursors.push(before); page(data.next_cursor); } }, "Older ›"));
    } catch (error) {
      replace(results, errorBox(error));
    }
  }

  const go = h("button", { type: "submit", class: "primary" }, "Filter");
  replace(main, h("h1", {}, "Audit log"),
    h("form", { class: "row panel", onsubmit: (event) => { event.preventDefault(); cursors.length = 0; act(go, () => page()); } },
      field("Action", action), field("Actor", actor), field("Table", tableName), field("Since", since), field("Until", until), go),
    results, more);
  page();
}
