// Webhooks: the org's signed endpoints (admins only, as is the API), their secrets (shown
// once), and per endpoint the delivery log with payloads, retry and replay.
// URLs, descriptions, payloads and receivers' answers are anyone's strings: text nodes only.
import { act, badge, empty, errorBox, field, fmtDate, h, load, loading, replace, select, toast } from "../ui.js";

const PAGE_SIZE = 25;
const POLL_MS = 2000;
const POLL_MAX_MS = 30000;
const IDLE_MS = 5000;
const STATUS_KIND = { delivered: "ok", pending: "warn", failed: "bad" };
const EVENTS_HELP = "Names or patterns, separated by commas or spaces: db.<table>.insert|update|delete, "
  + "member.added|removed|role_changed, invitation.created|revoked|accepted, settings.updated, "
  + "api_key.created|revoked, webhook.test; * matches anything (db.*, member.*, *).";

/** "db.*, member.added  api_key.*" → ["db.*", "member.added", "api_key.*"] */
export function parseEvents(text) {
  return text.split(/[\s,]+/).filter(Boolean);
}

export function render(main, { api, org, params, onStop }) {
  if (!["owner", "admin"].includes(org.role)) {
    replace(main, h("h1", {}, "Webhooks"), empty("Webhooks are managed by the org's admins."));
    return;
  }
  const base = `/v1/orgs/${org.id}/webhooks`;
  const secretBox = h("div", { id: "webhook-secret-box" });
  const endpoints = h("div", { id: "webhook-endpoints" });
  const editor = h("div");
  const log = h("section", { id: "webhook-log", "aria-label": "Deliveries" });
  let selected = params[0] || null;
  let timer = null;
  let stopped = false;
  let shownLog = 0; // bumped when a log opens or closes: answers for an older one are dropped
  onStop(() => { stopped = true; clearTimeout(timer); });
  const later = (fn, ms) => {
    clearTimeout(timer);
    timer = fn && !stopped ? setTimeout(fn, ms) : null;
  };

  const url = h("input", { type: "url", name: "url", required: true, placeholder: "https://hooks.example.com/orgbase" });
  const events = h("input", { name: "events", required: true, placeholder: "db.* member.*" });
  const description = h("input", { name: "description", maxlength: 500, placeholder: "optional" });
  const addErrors = h("div");
  const add = h("button", { class: "primary", type: "submit" }, "Add endpoint");
  const addForm = h("form", { class: "panel", id: "webhook-add", onsubmit: (event) => {
    event.preventDefault();
    act(add, async () => {
      const created = await api.post(base, {
        url: url.value.trim(), events: parseEvents(events.value), description: description.value || undefined,
      });
      showSecret(created.secret, `It signs the deliveries to ${created.url}.`);
      addForm.reset();
      await drawEndpoints();
      openLog(created);
    }, addErrors);
  } },
  h("div", { class: "row" }, field("URL", url), field("Events", events), field("Description", description), add),
  h("p", { class: "muted" }, EVENTS_HELP), addErrors);

  replace(main, h("h1", {}, "Webhooks"),
    h("p", { class: "muted" }, "Signed POSTs (Standard Webhooks) to your endpoints when something happens in this org, "
      + "retried for about three days until the endpoint answers 2xx."),
    secretBox,
    h("section", { "aria-label": "Endpoints" }, h("h2", {}, "Endpoints"), endpoints, editor),
    h("section", { "aria-label": "Add an endpoint" }, h("h2", {}, "Add an endpoint"), addForm),
    log);

  function showSecret(secret, context) {
    const code = h("code", { id: "webhook-secret" }, secret);
    replace(secretBox, h("div", { class: "secret panel", role: "alert" },
      h("p", {}, h("strong", {}, "Copy this signing secret now: you will not see it again. "), context),
      h("div", { class: "row" }, code,
        h("button", { type: "button", onclick: () => copy(code, secret) }, "Copy"),
        h("button", { type: "button", onclick: () => replace(secretBox) }, "I have copied it"))));
  }

  async function copy(code, secret) {
    try {
      await navigator.clipboard.writeText(secret);
      toast("Secret copied");
    } catch {
      // No clipboard (permission refused, or not a secure origin): select it for Ctrl+C.
      const range = document.createRange();
      range.selectNodeContents(code);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      toast("The secret is selected: copy it with Ctrl+C");
    }
  }

  function drawEndpoints() {
    return load(endpoints, async () => {
      const list = await api.get(base);
      const errors = h("div");
      const chosen = list.find((e) => e.id === selected);
      if (!chosen && selected) { selected = null; shownLog += 1; later(null); replace(log); }
      if (chosen && !log.hasChildNodes()) openLog(chosen);
      if (!list.length) return empty("No endpoint yet: add one below.");
      const head = ["endpoint", "events", "status", "created", ""];
      return [h("div", { class: "table-wrap" }, h("table", {},
        h("thead", {}, h("tr", {}, head.map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, list.map((e) => h("tr", { "data-endpoint": e.id },
          h("td", {}, h("code", { class: "url" }, e.url), e.description ? h("div", { class: "muted" }, e.description) : null),
          h("td", {}, h("code", {}, e.events.join(", "))),
          h("td", {}, e.enabled ? badge("enabled", "ok") : [badge("disabled", "bad"),
            e.disabled_reason ? h("div", { class: "muted" }, e.disabled_reason) : null]),
          h("td", {}, fmtDate(e.created_at)),
          h("td", {}, h("div", { class: "row" }, endpointActions(e, errors)))))))), errors];
    }, "Reading the endpoints…");
  }

  function endpointActions(e, errors) {
    const button = (label, action, attrs = {}) =>
      h("button", { type: "button", ...attrs, onclick: (event) => act(event.target, () => action(), errors) }, label);
    return [
      button("Deliveries", async () => openLog(e)),
      e.enabled ? button("Send test", async () => {
        const queued = await api.post(`${base}/${e.id}/test`);
        toast(`Test event queued (${queued.message_id})`);
        openLog(e);
      }) : null,
      button(e.enabled ? "Disable" : "Enable", async () => {
        await api.patch(`${base}/${e.id}`, { enabled: !e.enabled });
        toast(e.enabled ? "Endpoint disabled: its events wait until it is enabled again" : "Endpoint enabled");
        await drawEndpoints();
      }),
      button("Edit", async () => showEditor(e)),
      button("Rotate secret", async () => {
        if (!confirm(`Rotate the secret of ${e.url}? The current one keeps signing alongside for 24 hours.`)) return;
        const rotated = await api.post(`${base}/${e.id}/rotate-secret`);
        showSecret(rotated.secret, `It signs the deliveries to ${e.url}; the previous secret signs too until `
          + `${fmtDate(rotated.previous_valid_until)}.`);
      }),
      button("Delete", async () => {
        if (!confirm(`Delete the endpoint ${e.url} and its delivery log?`)) return;
        await api.del(`${base}/${e.id}`);
        toast("Endpoint deleted");
        replace(editor);
        await drawEndpoints();
      }, { class: "danger" }),
    ];
  }

  function showEditor(e) {
    const editUrl = h("input", { type: "url", name: "url", required: true, value: e.url });
    const editEvents = h("input", { name: "events", required: true, value: e.events.join(", ") });
    const editDescription = h("input", { name: "description", maxlength: 500, value: e.description || "" });
    const errors = h("div");
    const save = h("button", { class: "primary", type: "submit" }, "Save");
    replace(editor, h("form", { class: "panel", id: "webhook-edit", onsubmit: (event) => {
      event.preventDefault();
      act(save, async () => {
        const changes = { events: parseEvents(editEvents.value), description: editDescription.value || null };
        if (editUrl.value.trim() !== e.url) changes.url = editUrl.value.trim();
        const updated = await api.patch(`${base}/${e.id}`, changes);
        toast("Endpoint saved");
        replace(editor);
        await drawEndpoints();
        if (selected === updated.id) openLog(updated);
      }, errors);
    } },
    h("h3", { class: "wrap-anywhere" }, "Edit ", h("code", {}, e.url)),
    h("div", { class: "row" }, field("URL", editUrl), field("Events", editEvents), field("Description", editDescription),
      save, h("button", { type: "button", onclick: () => replace(editor) }, "Cancel")),
    errors));
    editEvents.focus();
  }

  function openLog(endpoint) {
    selected = endpoint.id;
    const mine = ++shownLog;
    history.replaceState(null, "", `#/webhooks/${encodeURIComponent(endpoint.id)}`);
    const path = `${base}/${endpoint.id}`;
    const cursors = [];
    const expanded = new Set();
    let shown = null;
    const status = select([["", "all"], "pending", "delivered", "failed"], "", {
      "aria-label": "Delivery status", onchange: () => { cursors.length = 0; page(null); },
    });
    const since = h("input", { type: "datetime-local", name: "since", required: true });
    const replay = h("button", { type: "submit" }, "Replay");
    const rows = h("div");
    const pager = h("div", { class: "row" });
    const errors = h("div");

    async function page(before, { quiet = false, wait = POLL_MS } = {}) {
      later(null);
      if (!quiet) { replace(rows, loading("Reading the delivery log…")); replace(pager); }
      try {
        const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
        if (before) q.set("before", String(before));
        if (status.value) q.set("status", status.value);
        const data = await api.get(`${path}/deliveries?${q}`);
        if (mine !== shownLog) return;
        shown = before;
        replace(rows, data.items.length ? deliveries(data.items) : empty("No delivery yet: send a test event."));
        replace(pager,
          h("button", { type: "button", disabled: cursors.length === 0, onclick: () => page(cursors.pop()) }, "‹ Newer"),
          h("button", { type: "button", disabled: !data.next_cursor, onclick: () => { cursors.push(before); page(data.next_cursor); } }, "Older ›"));
        // The newest page stays live: new deliveries every few seconds, pending ones followed
        // less often the longer they stay pending (a next attempt may be hours away, and one
        // under way shows its lease's end, not when it will be done).
        if (!before) {
          const pending = data.items.some((d) => d.status === "pending");
          const next = pending ? Math.min(2 * wait, POLL_MAX_MS) : POLL_MS;
          later(() => page(null, { quiet: true, wait: next }), pending ? wait : IDLE_MS);
        }
      } catch (error) {
        if (mine === shownLog) replace(rows, errorBox(error));
      }
    }

    function deliveries(items) {
      const head = ["time", "event", "status", "attempts", "last status", "latency", "next attempt", "last error", ""];
      const body = items.flatMap((d) => {
        const open = expanded.has(d.id);
        const detail = h("tr", { class: "detail", "data-detail": d.id, hidden: !open },
          h("td", { colspan: head.length },
            h("div", { class: "muted" }, "message ", h("code", {}, d.message_id),
              d.delivered_at ? ` · delivered ${fmtDate(d.delivered_at)}` : "",
              d.last_attempt_at ? ` · last attempt ${fmtDate(d.last_attempt_at)}` : ""),
            h("h3", {}, "Request payload"), h("pre", { class: "payload" }, JSON.stringify(d.payload, null, 2)),
            h("h3", {}, "Last response"),
            d.last_response ? h("pre", { class: "response" }, d.last_response) : h("p", { class: "muted" }, "No answer recorded.")));
        const toggle = h("button", { type: "button", "aria-expanded": String(open), onclick: () => {
          detail.hidden = !detail.hidden;
          toggle.setAttribute("aria-expanded", String(!detail.hidden));
          if (detail.hidden) expanded.delete(d.id); else expanded.add(d.id);
        } }, "Details");
        const retry = h("button", { type: "button", onclick: () => act(retry, async () => {
          await api.post(`${path}/deliveries/${d.id}/retry`);
          toast(`Delivery ${d.id} queued again`);
          await page(shown, { quiet: true });
        }, errors) }, "Retry");
        return [h("tr", { "data-delivery": d.id, "data-status": d.status },
          h("td", {}, fmtDate(d.created_at)),
          h("td", {}, h("code", {}, d.event_type)),
          h("td", {}, badge(d.status, STATUS_KIND[d.status])),
          h("td", {}, String(d.attempts)),
          h("td", {}, d.last_status === null ? "–" : String(d.last_status)),
          h("td", {}, d.last_latency_ms === null ? "–" : `${d.last_latency_ms} ms`),
          h("td", {}, fmtDate(d.next_attempt_at) || "–"),
          h("td", { class: "wrap-anywhere" }, d.last_error || ""),
          h("td", { class: "actions" }, toggle, " ", retry)), detail];
      });
      return h("div", { class: "table-wrap" }, h("table", {},
        h("thead", {}, h("tr", {}, head.map((t) => h("th", { scope: "col" }, t)))), h("tbody", {}, body)));
    }

    replace(log, h("h2", { class: "wrap-anywhere" }, "Deliveries to ", h("code", {}, endpoint.url)),
      h("div", { class: "row" }, field("Status", status),
        h("button", { type: "button", onclick: () => page(shown) }, "Refresh"),
        h("form", { class: "row", id: "webhook-replay", onsubmit: (event) => {
          event.preventDefault();
          act(replay, async () => {
            const from = new Date(since.value);
            if (!confirm(`Deliver again every event to ${endpoint.url} since ${fmtDate(from.toISOString())}?`)) return;
            const { requeued } = await api.post(`${path}/replay`, { since: from.toISOString() });
            toast(`${requeued} ${requeued === 1 ? "delivery" : "deliveries"} queued again`);
            cursors.length = 0;
            await page(null);
          }, errors);
        } }, field("Replay since…", since), replay)),
      errors, rows, pager);
    page(null);
  }

  drawEndpoints();
}
