// Org-scoped document collections through /v1/docs: JSON filter, insert, edit, delete.
import { act, empty, errorBox, field, h, load, loading, parseJson, replace, toast } from "../ui.js";

/** A document's _id as text: an ObjectId arrives as Extended JSON {"$oid": "..."}. */
function idOf(doc) {
  const id = doc._id;
  return id !== null && typeof id === "object" && "$oid" in id ? id.$oid : String(id);
}

const PAGE = 25;

function visible(doc) {
  const copy = { ...doc };
  delete copy._id;
  return copy;
}

export function render(main, { api, params }) {
  const list = h("ul", { class: "list", "aria-label": "Collections" });
  const view = h("section", { "aria-label": "Documents" });
  const newName = h("input", { "aria-label": "New collection name", placeholder: "new collection", pattern: "[A-Za-z][A-Za-z0-9_]{0,62}" });
  const create = h("form", { class: "row", onsubmit: (event) => {
    event.preventDefault();
    if (newName.value) showCollection(view, api, newName.value);
  } }, newName, h("button", { type: "submit" }, "Open"));
  replace(main, h("h1", {}, "Documents"), h("div", { class: "split" }, h("nav", {}, list, create), view));
  load(list, async () => {
    const collections = await api.get("/v1/docs");
    if (!collections.length) {
      replace(view, empty("No collection holds documents of this org yet. Name one to start."));
      return [];
    }
    const chosen = collections.find((c) => c.name === params[0]) || collections[0];
    showCollection(view, api, chosen.name);
    return collections.map((c) => h("li", {}, h("button", {
      type: "button", "data-collection": c.name,
      onclick: () => {
        history.replaceState(null, "", `#/documents/${encodeURIComponent(c.name)}`);
        showCollection(view, api, c.name);
      },
    }, `${c.name} (${c.count})`)));
  }, "Listing collections…");
}

function showCollection(view, api, name) {
  const base = `/v1/docs/${encodeURIComponent(name)}`;
  const state = { skip: 0 };
  const filter = h("textarea", { class: "code", rows: 3, "aria-label": "Filter (JSON)", value: "{}" });
  const docs = h("div");
  const pager = h("div", { class: "row" });
  const editor = h("div");
  const errors = h("div");

  async function refresh() {
    replace(docs, loading("Finding documents…"));
    replace(errors);
    try {
      const query = { filter: parseJson(filter.value || "{}", "The filter"), sort: { _id: -1 }, skip: state.skip, limit: PAGE };
      const found = await api.post(`${base}/query`, query);
      replace(docs, found.length
        ? h("div", { class: "table-wrap" }, h("table", {},
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "_id"), h("th", { scope: "col" }, "document"))),
          h("tbody", {}, found.map((doc) => {
            const tr = h("tr", { class: "clickable", tabindex: "0", "data-id": idOf(doc) },
              h("td", {}, h("code", { class: "rid", title: idOf(doc) }, idOf(doc))), h("td", {}, h("pre", {}, JSON.stringify(visible(doc), null, 1))));
            tr.addEventListener("click", () => edit(doc));
            tr.addEventListener("keydown", (event) => { if (event.key === "Enter") edit(doc); });
            return tr;
          }))))
        : empty("No document matches."));
      replace(pager,
        h("button", { type: "button", disabled: state.skip === 0, onclick: () => { state.skip = Math.max(0, state.skip - PAGE); refresh(); } }, "‹ Previous"),
        h("button", { type: "button", disabled: found.length < PAGE, onclick: () => { state.skip += PAGE; refresh(); } }, "Next ›"));
    } catch (error) {
      replace(docs, errorBox(error));
    }
  }

  function form(title, doc) {
    const text = h("textarea", { class: "code", rows: 10, "aria-label": "Document (JSON)", value: JSON.stringify(doc ? visible(doc) : {}, null, 2) });
    const formErrors = h("div");
    const save = h("button", { class: "primary", type: "submit" }, "Save");
    const f = h("form", { class: "panel", "aria-label": title, onsubmit: (event) => {
      event.preventDefault();
      act(save, async () => {
        const body = parseJson(text.value, "The document");
        if (doc) await api.put(`${base}/${encodeURIComponent(idOf(doc))}`, body);
        else await api.post(base, body);
        replace(editor);
        toast(doc ? "Document saved" : "Document inserted");
        await refresh();
      }, formErrors);
    } }, h("h2", {}, title), field("JSON", text), formErrors,
    h("div", { class: "row" }, save, h("button", { type: "button", onclick: () => replace(editor) }, "Cancel"),
      doc ? h("button", { type: "button", class: "danger", onclick: (event) => act(event.target, async () => {
        if (!confirm("Delete this document?")) return;
        await api.del(`${base}/${encodeURIComponent(idOf(doc))}`);
        replace(editor);
        toast("Document deleted");
        await refresh();
      }, formErrors) }, "Delete") : null));
    replace(editor, f);
    text.focus();
  }

  function edit(doc) { form(`Edit ${idOf(doc)}`, doc); }

  replace(view, h("h2", {}, name),
    h("form", { onsubmit: (event) => { event.preventDefault(); state.skip = 0; refresh(); } },
      field("Filter (MongoDB query, JSON)", filter),
      h("div", { class: "row" }, h("button", { type: "submit" }, "Find"),
        h("button", { type: "button", class: "primary", onclick: () => form(`New document in ${name}`, null) }, "Insert document"))),
    editor, errors, docs, pager);
  refresh();
}
