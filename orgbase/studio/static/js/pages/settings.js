// The org's settings document: edit with If-Match, version history, diff and rollback.
import { act, empty, field, fmtDate, h, load, parseJson, replace, select, toast } from "../ui.js";

/** Line diff of two texts (longest common subsequence; settings documents are small). */
export function diffLines(before, after) {
  const a = before.split("\n");
  const b = after.split("\n");
  const lcs = Array.from({ length: a.length + 1 }, () => new Array(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const out = [];
  let i = 0, j = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) { out.push([" ", a[i]]); i++; j++; }
    else if (lcs[i + 1][j] >= lcs[i][j + 1]) { out.push(["-", a[i]]); i++; }
    else { out.push(["+", b[j]]); j++; }
  }
  while (i < a.length) out.push(["-", a[i++]]);
  while (j < b.length) out.push(["+", b[j++]]);
  return out;
}

const pretty = (value) => JSON.stringify(value, null, 2);

export function render(main, { api, org }) {
  const base = `/v1/orgs/${org.id}/settings`;
  const admin = ["owner", "admin"].includes(org.role);
  const current = h("div");
  const history = h("div");
  replace(main, h("h1", {}, "Settings"), current, h("h2", {}, "Version history"), history);

  const draw = () => {
    load(current, async () => {
      const doc = await api.get(base);
      const text = h("textarea", { class: "code", rows: 12, "aria-label": "Settings (JSON)", value: pretty(doc.settings), readonly: !admin });
      const errors = h("div");
      const save = h("button", { class: "primary", type: "submit" }, "Save as a new version");
      return h("form", { class: "panel", onsubmit: (event) => {
        event.preventDefault();
        act(save, async () => {
          const settings = parseJson(text.value, "The settings");
          await api.put(base, { settings }, { headers: { "If-Match": `"${doc.version}"` } });
          toast("Settings saved");
          draw();
        }, errors);
      } },
      h("p", { class: "muted", id: "settings-version" }, `Version ${doc.version}, saved ${fmtDate(doc.updated_at)}`),
      field("Settings document", text), errors, admin ? save : h("p", { class: "muted" }, "Only admins change settings."));
    }, "Reading the settings…");
    load(history, async () => {
      const versions = await api.get(`${base}/versions`);
      // The first version is the empty document every org starts with: history begins
      // with the first save.
      if (versions.length < 1) return empty("Only the first version so far: each save makes a new one, listed here.");
      const options = versions.map((v) => [String(v.version), `v${v.version} · ${fmtDate(v.updated_at)}`]);
      const from = select(options, String(versions[Math.min(1, versions.length - 1)].version), { "aria-label": "Compare from" });
      const to = select(options, String(versions[0].version), { "aria-label": "Compare to" });
      const diff = h("div", { class: "diff", id: "settings-diff", "aria-live": "polite" });
      const errors = h("div");
      const showDiff = () => {
        const a = versions.find((v) => String(v.version) === from.value);
        const b = versions.find((v) => String(v.version) === to.value);
        replace(diff, diffLines(pretty(a.settings), pretty(b.settings)).map(([mark, line]) =>
          h("div", { class: mark === "+" ? "add" : mark === "-" ? "del" : "" }, `${mark} ${line}`)));
      };
      from.addEventListener("change", showDiff);
      to.addEventListener("change", showDiff);
      showDiff();
      return [
        h("div", { class: "row" }, field("From", from), field("To", to)), diff, errors,
        h("div", { class: "table-wrap" }, h("table", {},
          h("thead", {}, h("tr", {}, ["version", "saved", "by", ""].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, versions.map((v, index) => h("tr", { "data-version": v.version },
            h("td", {}, `v${v.version}`), h("td", {}, fmtDate(v.updated_at)), h("td", {}, h("code", { class: "rid", title: v.updated_by || "" }, v.updated_by || "")),
            h("td", { class: "actions" }, admin && index > 0 ? h("button", { type: "button", onclick: (event) => act(event.target, async () => {
              if (!confirm(`Roll back to version ${v.version}? This makes a new version equal to it.`)) return;
              await api.post(`${base}/rollback/${v.version}`);
              toast(`Rolled back to version ${v.version}`);
              draw();
            }, errors) }, `Roll back to v${v.version}`) : null)))))),
      ];
    }, "Reading the history…");
  };
  draw();
}
