// Auth management: members and roles, invitations, API keys, and my own sessions.
import { act, badge, empty, field, fmtDate, h, load, replace, select, table, toast } from "../ui.js";

const ROLES = ["owner", "admin", "member", "viewer"];
const KEY_ROLES = ["admin", "member", "viewer"];

export function render(main, { api, user, org }) {
  const base = `/v1/orgs/${org.id}`;
  const admin = ["owner", "admin"].includes(org.role);
  const members = h("div");
  const invitations = h("div");
  const keys = h("div");
  const sessions = h("div");
  replace(main, h("h1", {}, "Members & keys"),
    h("section", { "aria-label": "Members" }, h("h2", {}, "Members"), members),
    admin ? h("section", { "aria-label": "Invitations" }, h("h2", {}, "Invitations"), invitations) : null,
    admin ? h("section", { "aria-label": "API keys" }, h("h2", {}, "API keys"), keys) : null,
    h("section", { "aria-label": "My sessions" }, h("h2", {}, "My sessions"), sessions));

  const drawMembers = () => load(members, async () => {
    const list = await api.get(`${base}/members`);
    const errors = h("div");
    // People join by accepting an invitation (the Invitations section): nobody is added
    // without their consent.
    return [
      table([
        { label: "email", key: "email" },
        { label: "name", key: "display_name" },
        { label: "role", render: (m) => admin && m.user_id !== user.id
          ? select(ROLES, m.role, { "aria-label": `Role of ${m.email}`, onchange: (event) => act(event.target, async () => {
            await api.patch(`${base}/members/${m.user_id}`, { role: event.target.value });
            toast(`${m.email} is now ${event.target.value}`);
          }, errors) })
          : badge(m.role, "") },
        { label: "since", render: (m) => fmtDate(m.created_at) },
        { label: "", class: "actions", render: (m) => (admin || m.user_id === user.id)
          ? h("button", { type: "button", class: "danger", onclick: (event) => act(event.target, async () => {
            if (!confirm(m.user_id === user.id ? "Leave this org?" : `Remove ${m.email}?`)) return;
            await api.del(`${base}/members/${m.user_id}`);
            drawMembers();
          }, errors) }, m.user_id === user.id ? "Leave" : "Remove") : null },
      ], list),
      errors,
    ];
  });

  const drawInvitations = () => load(invitations, async () => {
    const list = await api.get(`${base}/invitations`);
    const errors = h("div");
    const email = h("input", { type: "email", required: true, "aria-label": "Invitee email" });
    const role = select(ROLES.slice(1), "member", { "aria-label": "Invitation role" });
    const send = h("button", { type: "submit" }, "Invite");
    return [
      list.length ? table([
        { label: "email", key: "email" },
        { label: "role", key: "role" },
        { label: "status", render: (i) => badge(i.status, i.status === "pending" ? "warn" : "") },
        { label: "expires", render: (i) => fmtDate(i.expires_at) },
        { label: "", class: "actions", render: (i) => i.status === "pending" ? h("button", { type: "button", class: "danger", onclick: (event) => act(event.target, async () => {
          await api.del(`${base}/invitations/${i.id}`);
          drawInvitations();
        }, errors) }, "Revoke") : null },
      ], list) : empty("No invitation yet."),
      errors,
      h("form", { class: "row", onsubmit: (event) => {
        event.preventDefault();
        act(send, async () => {
          await api.post(`${base}/invitations`, { email: email.value, role: role.value });
          toast(`Invitation sent to ${email.value}`);
          drawInvitations();
        }, errors);
      } }, field("Email", email), field("Role", role), send),
    ];
  });

  const drawKeys = (created) => load(keys, async () => {
    const list = await api.get(`${base}/api-keys`);
    const errors = h("div");
    const name = h("input", { required: true, "aria-label": "Key name", placeholder: "e.g. backend job" });
    const role = select(KEY_ROLES, "member", { "aria-label": "Key role" });
    const make = h("button", { type: "submit" }, "Create key");
    return [
      created ? h("div", { class: "secret", role: "alert" },
        h("strong", {}, "Copy this key now: it is shown only once. "), h("code", { id: "new-api-key" }, created.key)) : null,
      list.length ? table([
        { label: "name", key: "name" },
        { label: "prefix", render: (k) => h("code", {}, k.prefix) },
        { label: "role", key: "role" },
        { label: "created", render: (k) => fmtDate(k.created_at) },
        { label: "last used", render: (k) => fmtDate(k.last_used_at) || "never" },
        { label: "status", render: (k) => k.revoked_at ? badge("revoked", "bad") : badge("active", "ok") },
        { label: "", class: "actions", render: (k) => k.revoked_at ? null : h("button", { type: "button", class: "danger", "data-key-name": k.name, onclick: (event) => act(event.target, async () => {
          if (!confirm(`Revoke the key ${k.name}? Calls with it fail at once.`)) return;
          await api.del(`${base}/api-keys/${k.id}`);
          toast(`Key ${k.name} revoked`);
          drawKeys();
        }, errors) }, "Revoke") },
      ], list) : empty("No API key yet."),
      errors,
      h("form", { class: "row", onsubmit: (event) => {
        event.preventDefault();
        act(make, async () => drawKeys(await api.post(`${base}/api-keys`, { name: name.value, role: role.value })), errors);
      } }, field("Name", name), field("Role", role), make),
    ];
  });

  // My sessions, a page at a time (this session first): a busy account has many.
  const SESSIONS_PER_PAGE = 10;
  const drawSessions = (pageIndex = 0) => load(sessions, async () => {
    const all = await api.get("/v1/auth/sessions");
    const list = [...all.filter((s) => s.current), ...all.filter((s) => !s.current)];
    const pages = Math.max(1, Math.ceil(list.length / SESSIONS_PER_PAGE));
    const index = Math.min(pageIndex, pages - 1);
    const shown = list.slice(index * SESSIONS_PER_PAGE, (index + 1) * SESSIONS_PER_PAGE);
    const errors = h("div");
    return [table([
      { label: "device", render: (s) => s.user_agent || "unknown" },
      { label: "ip", key: "ip" },
      { label: "signed in", render: (s) => fmtDate(s.created_at) },
      { label: "last seen", render: (s) => fmtDate(s.last_seen_at) },
      { label: "", class: "actions", render: (s) => s.current ? badge("this session", "ok") : h("button", { type: "button", class: "danger", onclick: (event) => act(event.target, async () => {
        await api.del(`/v1/auth/sessions/${s.id}`);
        drawSessions(index);
      }, errors) }, "Revoke") },
    ], shown), errors,
    pages > 1 ? h("div", { class: "pager" },
      h("button", { type: "button", disabled: index === 0, onclick: () => drawSessions(index - 1) }, "‹ Newer"),
      h("span", { class: "muted" }, `page ${index + 1} of ${pages} · ${list.length} sessions`),
      h("button", { type: "button", disabled: index >= pages - 1, onclick: () => drawSessions(index + 1) }, "Older ›")) : null];
  });

  drawMembers();
  if (admin) { drawInvitations(); drawKeys(); }
  drawSessions();
}
