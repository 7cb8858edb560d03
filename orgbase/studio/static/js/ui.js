// Small DOM helpers shared by the pages: element building, states, tables, formats.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "value" || key === "checked" || key === "selected") {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

export function loading(text = "Loading…") {
  return h("p", { class: "loading", role: "status" }, h("span", { class: "spinner" }), text);
}

export function empty(text) {
  return h("div", { class: "empty" }, text);
}

/** The API's message, its hint, its code and the request id, so a support call can find the logs. */
export function errorBox(error) {
  const code = error.code ? `code ${error.code}` : "";
  const rid = error.requestId ? `request id ${error.requestId}` : "";
  return h(
    "div",
    { class: "error", role: "alert" },
    h("div", {}, error.message || String(error)),
    error.hint ? h("div", { class: "hint" }, error.hint) : null,
    code || rid ? h("div", { class: "meta" }, [code, rid].filter(Boolean).join(" · ")) : null,
  );
}

/** Fill `target` with a spinner, then with what `render` returns (or the error). */
export async function load(target, render, text) {
  replace(target, loading(text));
  try {
    replace(target, await render());
  } catch (error) {
    replace(target, errorBox(error));
  }
}

/** Run a button's action with the button disabled; errors go to `errors` (or a toast). */
export async function act(button, action, errors) {
  if (button) button.disabled = true;
  if (errors) errors.replaceChildren();
  try {
    return await action();
  } catch (error) {
    if (errors) errors.append(errorBox(error));
    else toast(`${error.message}${error.requestId ? ` (request ${error.requestId})` : ""}`, "bad");
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

/** A form whose submit runs `action` (the button disabled meanwhile, a failure shown above
 * it) and then `after` with what the action gave, when it gave something. */
export function actionForm(label, action, after, ...children) {
  const errors = h("div");
  const submit = h("button", { class: "primary", type: "submit" }, label);
  return h("form", {
    onsubmit: async (event) => {
      event.preventDefault();
      const result = await act(submit, action, errors);
      if (result) await after(result);
    },
  }, ...children, errors, submit);
}

export function toast(message, kind = "info") {
  const box = document.getElementById("toasts");
  const item = h("div", { class: `toast ${kind}` }, message);
  box.append(item);
  setTimeout(() => item.remove(), 5000);
}

export function badge(text, kind) {
  return h("span", { class: `badge ${kind || text}` }, text);
}

export function card(label, value, extra) {
  return h("div", { class: "card" }, h("div", { class: "label" }, label),
    h("div", { class: "value" }, value), extra || null);
}

export function fmtDate(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
}

export function fmtPercent(value, digits = 2) {
  return value === null || value === undefined ? "–" : `${(value * 100).toFixed(digits)}%`;
}

export function fmtBytes(value) {
  if (value === null || value === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let n = Number(value);
  let unit = 0;
  while (n >= 1024 && unit < units.length - 1) { n /= 1024; unit += 1; }
  return `${n.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return "never at this rate";
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} days`;
}

export function cell(value) {
  if (value === null || value === undefined) return h("span", { class: "muted" }, "null");
  if (typeof value === "object") return h("code", {}, JSON.stringify(value));
  return String(value);
}

/** A table from column specs {label, key | render}; rows may be clickable. */
export function table(columns, rows, { onRow, caption } = {}) {
  const head = h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c.header || c.label)));
  const body = rows.map((row) => {
    const tr = h("tr", {}, columns.map((c) => h("td", { class: c.class || null },
      c.render ? c.render(row) : cell(row[c.key]))));
    if (onRow) {
      tr.classList.add("clickable");
      tr.tabIndex = 0;
      tr.addEventListener("click", (event) => {
        if (!event.target.closest("button, a, select, input")) onRow(row);
      });
      tr.addEventListener("keydown", (event) => { if (event.key === "Enter") onRow(row); });
    }
    return tr;
  });
  return h("div", { class: "table-wrap" },
    h("table", {}, caption ? h("caption", { class: "muted" }, caption) : null,
      h("thead", {}, head), h("tbody", {}, body)));
}

export function field(label, input) {
  return h("label", {}, label, input);
}

export function select(options, value, attrs = {}) {
  return h("select", attrs, options.map((o) => {
    const [v, text] = Array.isArray(o) ? o : [o, o];
    return h("option", { value: v, selected: v === value }, text);
  }));
}

export function parseJson(text, what) {
  try {
    return JSON.parse(text);
  } catch (error) {
    const wrapped = new Error(`${what} is not valid JSON: ${error.message}`);
    wrapped.code = "invalid_json";
    throw wrapped;
  }
}
