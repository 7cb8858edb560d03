// The org's audit log: filters (action, actor, table, time range), cursor pages, and each
// event as one short line whose change opens below it as a diff of the old and new values.
import { act, empty, errorBox, field, fmtDate, h, loading, replace } from "../ui.js";
import { diffLines } from "./settings.js";

/** JSON with the top-level keys sorted, so two versions of a row line up key by key. */
const pretty = (value) => JSON.stringify(Object.fromEntries(Object.entries(value || {}).sort()), null, 2);

/** The keys whose values differ between two rows (all keys when one side is missing). */
function changedKeys(before, after) {
  const keys = new Set([...Object.keys(before || {}), ...Object.keys(after || {})]);
  return [...keys].filter((k) => JSON.stringify((before || {})[k]) !== JSON.stringify((after || {})[k])).sort();
}

function summary(e) {
  if (e.old_values && e.new_values) return `changed ${changedKeys(e.old_values, e.new_values).join(", ")}`;
  if (e.new_values) return `new: ${Object.keys(e.new_values).length} columns`;
  if (e.old_values) return "deleted";
  return e.details ? JSON.stringify(e.details) : "";
}

function diffView(e) {
  const before = e.old_values ? pretty(e.old_values) : "";
  const after = e.new_values ? pretty(e.new_values) : e.details ? pretty(e.details) : "";
  // An update shows its changed lines only (a row has many columns); an insert or a
  // delete shows the whole row.
  const changes = diffLines(before, after);
  const lines = before && after ? changes.filter(([mark]) => mark !== " ") : changes;
  return h("div", { class: "diff", "aria-label": "Change" }, lines.map(([mark, line]) =>
    h("div", { class: mark === "+" ? "add" : mark === "-" ? "del" : "" }, `${mark} ${line}`)));
}

function detailRow(e, columns) {
  return h("tr", { class: "detail" }, h("td", { colspan: String(columns) },
    h("dl", {},
      h("dt", {}, "actor"), h("dd", {}, h("code", {}, e.actor_user_id || e.actor_kind || "")),
      h("dt", {}, "request"), h("dd", {}, h("code", {}, e.request_id || "")),
      e.row_key ? [h("dt", {}, "row"), h("dd", {}, h("code", {}, JSON.stringify(e.row_key)))] : null),
    diffView(e)));
}

/** "6 Dec, 10:09:59": the day and the second, short enough for a phone's column. */
function when(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return fmtDate(iso);
  return date.toLocaleString([], { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
}

function eventRows(e) {
  const columns = 7;
  // The Diff button leads the row, so a phone shows it without scrolling the table.
  const row = h("tr", { "data-event": e.id ?? "", "data-action": e.action },
    h("td", { class: "actions" }),
    h("td", { title: fmtDate(e.occurred_at) }, when(e.occurred_at)), h("td", {}, h("code", {}, e.action)),
    h("td", {}, e.target_table || ""),
    h("td", { class: "summary", title: summary(e) }, summary(e)),
    h("td", {}, e.actor_user_id ? h("code", { class: "rid", title: e.actor_user_id }, e.actor_user_id) : e.actor_kind),
    h("td", {}, h("code", { class: "rid", title: e.request_id || "" }, e.request_id || "")));
  const toggle = h("button", { type: "button", "aria-expanded": "false", onclick: () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    if (open) row.after(detailRow(e, columns));
    else if (row.nextElementSibling && row.nextElementSibling.classList.contains("detail")) row.nextElementSibling.remove();
  } }, "Diff");
  row.firstChild.append(toggle);
  return row;
}

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
  const results = h("div", { id: "audit-log" });
  const more = h("div", { class: "pager" });
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
      replace(results, data.items.length ? h("div", { class: "table-wrap audit" }, h("table", {},
        h("thead", {}, h("tr", {}, ["", "when", "action", "table", "change", "actor", "request"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, data.items.map(eventRows)))) : empty("No audit event matches."));
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
