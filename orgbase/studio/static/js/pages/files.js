// Files: the org's buckets (/storage/v1), browsed by folder; upload with progress,
// download, a signed link, delete. Names are anyone's strings: text nodes only.
// The page's styles are its own (css/files.css, scoped by .files-page); tables scroll
// in their container.
import { act, empty, errorBox, field, fmtBytes, fmtDate, h, load, replace, select, toast } from "../ui.js";

const S = "/storage/v1";
const STYLESHEET = "/studio/css/files.css";

/** The page's own stylesheet (the studio's CSP allows no inline styles), once. */
function ensureStylesheet() {
  if (!document.querySelector(`link[href="${STYLESHEET}"]`)) {
    document.head.append(h("link", { rel: "stylesheet", href: STYLESHEET }));
  }
}

/** "a/b/c.txt" below prefix "a/" → the path in the API, each segment encoded. */
export function objectPath(bucket, name) {
  return `${encodeURIComponent(bucket)}/${name.split("/").map(encodeURIComponent).join("/")}`;
}

/** Upload with progress (fetch reports none): an XHR with the bearer token. */
function upload(api, bucket, name, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `${S}/object/${objectPath(bucket, name)}`);
    xhr.setRequestHeader("Authorization", `Bearer ${api.token}`);
    xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
    xhr.upload.onprogress = (event) => { if (event.lengthComputable) onProgress(event.loaded, event.total); };
    xhr.onload = () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText || "{}"); } catch { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(Object.assign(new Error(body.message || `upload failed (${xhr.status})`), body));
    };
    xhr.onerror = () => reject(new Error("the upload was cut off"));
    xhr.send(file);
  });
}

export function render(main, { api, org }) {
  const admin = ["owner", "admin"].includes(org.role);
  const state = { bucket: null, prefix: "" };
  const buckets = h("div", { id: "files-buckets" });
  const browser = h("section", { id: "files-browser", "aria-label": "Objects" });
  const output = h("div", { id: "files-output" });
  ensureStylesheet();
  replace(main, h("div", { class: "files-page" }, h("h1", {}, "Files"),
    h("p", { class: "muted" }, "Buckets of this org (the Storage API at /storage/v1). "
      + "Who reads and writes a bucket's files is its policy, enforced by the database."),
    buckets, output, browser));
  drawBuckets();

  async function drawBuckets() {
    await load(buckets, async () => {
      const list = await api.get(`${S}/bucket`);
      if (!state.bucket && list.length) state.bucket = list[0].id;
      const picker = select(list.map((b) => [b.id, `${b.id} (${b.policy})`]), state.bucket,
        { id: "files-bucket", name: "bucket", onchange: (event) => open(event.target.value, "") });
      const parts = [h("div", { class: "files-bar" }, list.length ? field("Bucket", picker) : empty("No bucket yet."))];
      if (admin) parts.push(newBucketForm());
      if (state.bucket) open(state.bucket, state.prefix);
      return parts;
    }, "Loading buckets…");
  }

  function newBucketForm() {
    const id = h("input", { name: "bucket-id", required: true, placeholder: "avatars", pattern: "[A-Za-z0-9][A-Za-z0-9._-]{0,62}" });
    const policy = select([["members", "members read and write"], ["owner_private", "owner only"],
      ["admin_write", "admins write"], ["public_read", "public read"]], "members", { name: "policy" });
    const errors = h("div");
    const add = h("button", { class: "primary", type: "submit" }, "Create bucket");
    return h("form", { id: "files-new-bucket", class: "files-bar", onsubmit: (event) => {
      event.preventDefault();
      act(add, async () => {
        await api.post(`${S}/bucket`, { id: id.value.trim(), policy: policy.value });
        state.bucket = id.value.trim();
        state.prefix = "";
        await drawBuckets();
      }, errors);
    } }, field("New bucket", id), field("Policy", policy), add, errors);
  }

  function open(bucket, prefix) {
    state.bucket = bucket;
    state.prefix = prefix;
    load(browser, () => folder(bucket, prefix), "Listing…");
  }

  async function folder(bucket, prefix) {
    const entries = await api.post(`${S}/object/list/${encodeURIComponent(bucket)}`,
      { prefix, limit: 1000, sortBy: { column: "name", order: "asc" } });
    const file = h("input", { type: "file", id: "files-upload", name: "file", multiple: true });
    const progress = h("div", { id: "files-progress", "aria-live": "polite" });
    const errors = h("div");
    const send = h("button", { class: "primary", type: "button", id: "files-send", onclick: () => act(send, async () => {
      for (const chosen of file.files) {
        const bar = h("progress", { max: chosen.size || 1, value: 0 });
        replace(progress, chosen.name, " ", bar);
        await upload(api, bucket, prefix + chosen.name, chosen, (done) => { bar.value = done; });
      }
      const names = [...file.files].map((chosen) => chosen.name).join(", ");
      replace(output, h("p", { role: "status", id: "files-uploaded" }, `Uploaded ${names}`));
      open(bucket, prefix);
    }, errors) }, "Upload");
    const rows = entries.map((entry) => entry.id === null
      ? h("tr", {}, h("td", {}, h("button", { type: "button", class: "link",
          onclick: () => open(bucket, `${prefix}${entry.name}/`) }, `${entry.name}/`)),
        h("td", {}, ""), h("td", {}, ""), h("td", {}, ""), h("td", {}, ""))
      : fileRow(bucket, prefix, entry));
    const crumbs = [h("button", { type: "button", onclick: () => open(bucket, "") }, bucket)];
    let walked = "";
    for (const part of prefix.split("/").filter(Boolean)) {
      walked += `${part}/`;
      const target = walked;
      crumbs.push("/", h("button", { type: "button", onclick: () => open(bucket, target) }, part));
    }
    return [
      h("nav", { class: "files-crumbs", "aria-label": "Folder" }, crumbs),
      h("div", { class: "files-bar" }, field("Upload to this folder", file), send, progress),
      errors,
      entries.length
        ? h("div", { class: "files-scroll table-wrap" }, h("table", { id: "files-table" },
          h("thead", {}, h("tr", {}, ["Name", "Size", "Type", "Changed", ""].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, rows)))
        : empty("This folder is empty."),
    ];
  }

  function fileRow(bucket, prefix, entry) {
    const name = prefix + entry.name;
    const meta = entry.metadata || {};
    const actions = h("td", { class: "row" },
      h("button", { type: "button", onclick: () => download(bucket, name) }, "Download"),
      h("button", { type: "button", onclick: () => signedLink(bucket, name) }, "Signed link"),
      h("button", { type: "button", class: "danger", onclick: () => remove(bucket, name) }, "Delete"));
    return h("tr", { "data-name": name }, h("td", {}, entry.name), h("td", {}, fmtBytes(meta.size)),
      h("td", {}, meta.mimetype || ""), h("td", {}, fmtDate(entry.updated_at)), actions);
  }

  async function download(bucket, name) {
    try {
      const response = await api.call("GET", `${S}/object/${objectPath(bucket, name)}`, { raw: true });
      const url = URL.createObjectURL(await response.blob());
      const link = h("a", { href: url, download: name.split("/").pop() });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (error) {
      replace(output, errorBox(error));
    }
  }

  async function signedLink(bucket, name) {
    try {
      const signed = await api.post(`${S}/object/sign/${objectPath(bucket, name)}`, { expiresIn: 3600 });
      const url = `${location.origin}${S}${signed.signedURL}`;
      replace(output, h("div", { class: "panel", id: "files-signed" },
        h("p", {}, "Anyone with this link can download ", h("strong", {}, name), " for an hour:"),
        h("code", { class: "files-link" }, url)));
    } catch (error) {
      replace(output, errorBox(error));
    }
  }

  async function remove(bucket, name) {
    if (!window.confirm(`Delete ${name}?`)) return;
    try {
      await api.del(`${S}/object/${encodeURIComponent(bucket)}`, { body: { prefixes: [name] } });
      toast(`Deleted ${name}`);
      open(bucket, state.prefix);
    } catch (error) {
      replace(output, errorBox(error));
    }
  }
}
