// Tenant tables through /v1/db: what RLS lets this user see, with filter, sort, pages and edits.
import { act, cell, empty, errorBox, field, h, load, loading, replace, select, toast } from "../ui.js";

const PAGE = 25;
const OPERATORS = [["eq", "="], ["neq", "≠"], ["gt", ">"], ["gte", "≥"], ["lt", "<"], ["lte", "≤"],
  ["ilike", "contains (ilike)"], ["is", "is (null/true/false)"]];
const HIDDEN_ON_WRITE = new Set(["org_id", "created_by"]);

function kind(column) {
  if (column.json) return "json";
  if (column.type === "boolean") return "boolean";
  if (/^(smallint|integer|bigint|numeric|real|double precision)/.test(column.type)) return "number";
  return "text";
}

/** A cell shows one line; its whole value is in the tooltip (and the editor). */
function titleOf(value) {
  if (value === null || value === undefined) return null;
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

function filterValue(op, value) {
  if (op === "ilike") return `ilike.*${value}*`;
  return `${op}.${value}`;
}

function readInput(column, input) {
  const raw = input.value;
  if (raw === "" ) return undefined;
  if (raw === "null" && column.nullable && kind(column) !== "text") return null;
  switch (kind(column)) {
    case "json": return JSON.parse(raw);
    case "boolean": return raw === "true";
    case "number": return Number.isNaN(Number(raw)) ? raw : Number(raw);
    default: return raw;
  }
}

function inputFor(column, value) {
  const text = value === undefined || value === null ? "" : typeof value === "object" ? JSON.stringify(value, null, 2) : String(value);
  if (kind(column) === "boolean") {
    return select([["", "(default)"], ["true", "true"], ["false", "false"]], text, { name: column.name });
  }
  if (kind(column) === "json") return h("textarea", { class: "code", name: column.name, value: text, rows: 4 });
  return h("input", { name: column.name, value: text, placeholder: column.has_default ? "(default)" : "" });
}

export function render(main, { api, params }) {
  const list = h("ul", { class: "list", "aria-label": "Tables" });
  const view = h("section", { "aria-label": "Rows" });
  replace(main, h("h1", {}, "Database"), h("div", { class: "split" }, h("nav", {}, list), view));
  load(list, async () => {
    const { tables } = await api.get("/v1/db");
    if (!tables.length) {
      replace(view, empty("There are no tenant tables yet. Create one with orgbase.enable_tenancy()."));
      return [];
    }
    const chosen = tables.find((t) => t.name === params[0]) || tables[0];
    showTable(view, api, chosen);
    return tables.map((t) => h("li", {}, h("button", {
      type: "button", "aria-current": t === chosen ? "true" : "false", "data-table": t.name,
      onclick: (event) => {
        for (const b of list.querySelectorAll("button")) b.setAttribute("aria-current", "false");
        event.target.setAttribute("aria-current", "true");
        history.replaceState(null, "", `#/database/${encodeURIComponent(t.name)}`);
        showTable(view, api, t);
      },
    }, t.name)));
  }, "Reading the schema…");
}

function showTable(view, api, table) {
  const state = { order: table.primary_key[0] || table.columns[0].name, desc: false, offset: 0, filters: [] };
  const rows = h("div");
  const pager = h("div", { class: "row" });
  const editor = h("div");
  const errors = h("div");

  const filterColumn = select(table.columns.map((c) => c.name), table.columns[0].name, { "aria-label": "Filter column" });
  const filterOp = select(OPERATORS, "eq", { "aria-label": "Filter operator" });
  const filterInput = h("input", { "aria-label": "Filter value", placeholder: "value" });
  const filters = h("div", { class: "row" });
  const addFilter = h("form", { class: "row", onsubmit: (event) => {
    event.preventDefault();
    state.filters.push({ column: filterColumn.value, op: filterOp.value, value: filterInput.value });
    state.offset = 0;
    filterInput.value = "";
    drawFilters();
    refresh();
  } }, filterColumn, filterOp, filterInput, h("button", { type: "submit" }, "Add filter"));

  function drawFilters() {
    replace(filters, state.filters.map((f, i) => h("button", {
      type: "button", title: "Remove this filter",
      onclick: () => { state.filters.splice(i, 1); state.offset = 0; drawFilters(); refresh(); },
    }, `${f.column} ${f.op} ${f.value} ✕`)));
  }

  function query() {
    const q = new URLSearchParams();
    q.set("order", `${state.order}.${state.desc ? "desc" : "asc"}`);
    q.set("limit", String(PAGE));
    q.set("offset", String(state.offset));
    for (const f of state.filters) q.append(f.column, filterValue(f.op, f.value));
    return q.toString();
  }

  // The rows these filters and this order select (up to the org's rows per response), as
  // CSV. Text a spreadsheet would run as a formula (=, +, -, @...) comes with a leading ',
  // since what the org's users wrote must not run in whoever opens the file.
  async function download(button) {
    await act(button, async () => {
      const q = new URLSearchParams(query());
      q.delete("limit");
      q.delete("offset");
      const response = await api.call("GET", `/v1/db/${encodeURIComponent(table.name)}?${q}`, {
        raw: true, headers: { Accept: "text/csv", Prefer: "csv-formulas=escape" },
      });
      const link = h("a", { href: URL.createObjectURL(await response.blob()), download: `${table.name}.csv`, hidden: true });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    }, errors);
  }

  function keyFilter(row) {
    return table.primary_key.map((k) => `${encodeURIComponent(k)}=eq.${encodeURIComponent(row[k])}`).join("&");
  }

  async function refresh() {
    replace(rows, loading("Reading rows…"));
    try {
      const response = await api.call("GET", `/v1/db/${encodeURIComponent(table.name)}?${query()}`, {
        raw: true, headers: { Prefer: "count=exact" },
      });
      const data = await response.json();
      const range = response.headers.get("content-range") || "";
      const total = Number(range.split("/")[1]);
      drawRows(data, Number.isFinite(total) ? total : null);
    } catch (error) {
      replace(rows, errorBox(error));
      replace(pager);
    }
  }

  function header(column) {
    const arrow = state.order === column.name ? (state.desc ? " ▼" : " ▲") : "";
    return h("button", { type: "button", onclick: () => {
      state.desc = state.order === column.name ? !state.desc : false;
      state.order = column.name;
      refresh();
    } }, column.name + arrow, h("span", { class: "type" }, column.type));
  }

  function drawRows(data, total) {
    if (!data.length) {
      replace(rows, empty(state.filters.length ? "No row matches these filters." : "This table has no rows you can see yet."));
    } else {
      const headRow = h("tr", {}, table.columns.map((c) => h("th", { scope: "col", "aria-sort": state.order === c.name ? (state.desc ? "descending" : "ascending") : null }, header(c))));
      const bodyRows = data.map((row) => {
        const tr = h("tr", { class: table.primary_key.length ? "clickable" : "", tabindex: table.primary_key.length ? "0" : null, "data-key": table.primary_key.map((k) => row[k]).join(",") },
          table.columns.map((c) => h("td", { title: titleOf(row[c.name]) }, cell(row[c.name]))));
        if (table.primary_key.length) {
          tr.addEventListener("click", () => edit(row));
          tr.addEventListener("keydown", (event) => { if (event.key === "Enter") edit(row); });
        }
        return tr;
      });
      replace(rows, h("div", { class: "table-wrap clip" }, h("table", {}, h("thead", {}, headRow), h("tbody", {}, bodyRows))));
    }
    const last = Math.min(state.offset + PAGE, total ?? state.offset + data.length);
    replace(pager,
      h("button", { type: "button", disabled: state.offset === 0, onclick: () => { state.offset = Math.max(0, state.offset - PAGE); refresh(); } }, "‹ Previous"),
      h("span", { class: "muted" }, data.length ? `rows ${state.offset + 1}–${last}${total !== null ? ` of ${total}` : ""}` : ""),
      h("button", { type: "button", disabled: total !== null ? last >= total : data.length < PAGE, onclick: () => { state.offset += PAGE; refresh(); } }, "Next ›"));
  }

  function form(title, row, onSave, onDelete) {
    const writable = table.columns.filter((c) => !c.generated && !HIDDEN_ON_WRITE.has(c.name) && !(c.identity && !row));
    const inputs = writable.map((c) => [c, inputFor(c, row ? row[c.name] : undefined)]);
    const formErrors = h("div");
    const save = h("button", { class: "primary", type: "submit" }, "Save");
    const f = h("form", { class: "panel", "aria-label": title, onsubmit: async (event) => {
      event.preventDefault();
      await act(save, async () => {
        const values = {};
        for (const [column, input] of inputs) {
          if (row && column.identity) continue;
          let value;
          try { value = readInput(column, input); } catch (error) { throw Object.assign(new Error(`${column.name}: ${error.message}`), { code: "invalid_json" }); }
          if (value === undefined) {
            if (row && column.nullable && row[column.name] !== null) values[column.name] = null;
            continue;
          }
          if (!row || JSON.stringify(value) !== JSON.stringify(row[column.name])) values[column.name] = value;
        }
        await onSave(values);
        replace(editor);
        await refresh();
      }, formErrors);
    } },
    h("h2", {}, title),
    inputs.map(([c, input]) => field(`${c.name} (${c.type}${c.nullable ? ", nullable" : ""})`, input)),
    formErrors,
    h("div", { class: "row" }, save,
      h("button", { type: "button", onclick: () => replace(editor) }, "Cancel"),
      onDelete ? h("button", { type: "button", class: "danger", onclick: (event) => act(event.target, async () => {
        if (!confirm("Delete this row?")) return;
        await onDelete();
        replace(editor);
        toast("Row deleted");
        await refresh();
      }, formErrors) }, "Delete") : null));
    replace(editor, f);
    const first = f.querySelector("input, textarea, select");
    if (first) first.focus();
  }

  function edit(row) {
    const path = `/v1/db/${encodeURIComponent(table.name)}?${keyFilter(row)}`;
    form(`Edit row ${table.primary_key.map((k) => row[k]).join(", ")}`, row,
      (values) => (Object.keys(values).length ? api.patch(path, values) : null),
      () => api.del(path));
  }

  replace(errors);
  replace(view,
    h("h2", {}, table.name),
    h("p", { class: "muted" }, `${table.columns.length} columns · key ${table.primary_key.join(", ") || "none"} · rows are those row-level security lets you see`),
    addFilter, filters,
    h("div", { class: "row" }, h("button", { type: "button", class: "primary", onclick: () => form(`New row in ${table.name}`, null, (values) => api.post(`/v1/db/${encodeURIComponent(table.name)}`, values)) }, "Insert row"),
      h("button", { type: "button", onclick: () => refresh() }, "Reload"),
      h("button", { type: "button", id: "download-csv", onclick: (event) => download(event.target) }, "Download CSV")),
    editor, errors, rows, pager);
  drawFilters();
  refresh();
}
