// The studio shell: sign-in, org switcher, navigation and a hash router over the pages.
import { Api } from "./api.js";
import { act, actionForm, errorBox, field, h, loading, replace, select } from "./ui.js";
import * as overview from "./pages/overview.js";
import * as database from "./pages/database.js";
import * as schema from "./pages/schema.js";
import * as documents from "./pages/documents.js";
import * as files from "./pages/files.js";
import * as redis from "./pages/redis.js";
import * as access from "./pages/access.js";
import * as settings from "./pages/settings.js";
import * as webhooks from "./pages/webhooks.js";
import * as functions from "./pages/functions.js";
import * as audit from "./pages/audit.js";
import * as slo from "./pages/slo.js";
import * as usage from "./pages/usage.js";
import * as security from "./pages/security.js";
import * as sso from "./pages/sso.js";
import * as mail from "./pages/mail.js";
import { challengeIfEnrolled, signInExtras, tokenClaims } from "./account.js";
import { askToSwitch, takeReturn } from "./provider_flow.js";

const PAGES = [
  ["overview", "Overview", overview],
  ["database", "Database", database],
  ["schema", "Schema", schema],
  ["documents", "Documents", documents],
  ["files", "Files", files],
  ["redis", "Redis", redis],
  ["access", "Members & keys", access],
  ["settings", "Settings", settings],
  ["webhooks", "Webhooks", webhooks],
  ["functions", "Functions", functions],
  ["audit", "Audit log", audit],
  ["slo", "SLO", slo],
  ["usage", "Usage", usage],
  ["sso", "Sign-in policy", sso],
  ["security", "Security", security],
  ["mail", "Mail (dev)", mail],
];

const api = new Api();
const studio = { api, user: null, orgs: [], role: null, stop: () => {} };
const root = document.getElementById("app");

api.onSignedOut = () => showSignIn();

function showSignIn(message, kind) {
  studio.stop();
  const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  const form = actionForm("Sign in", () => api.signIn(email.value, password.value).then(() => true), async () => {
    await challengeIfEnrolled(api, root);
    await enter();
  }, field("Email", email), field("Password", password));
  const notice = kind === "good" ? h("div", { class: "notice", role: "status" }, message) : errorBox({ message });
  replace(root, h("main", { class: "signin panel" }, h("h1", {}, "orgbase studio"),
    message ? notice : null, form, signInExtras(api, root, showSignIn)));
  email.focus();
}

async function enter() {
  replace(root, loading("Opening your orgs…"));
  try {
    studio.user = api.session.user;
    studio.orgs = await api.get("/v1/orgs");
    const remembered = sessionStorage.getItem("orgbase.org");
    if (!api.orgId && studio.orgs.length) {
      const pick = studio.orgs.find((o) => o.id === remembered) || studio.orgs[0];
      await api.refresh(pick.id);
    }
    renderShell();
  } catch (error) {
    replace(root, errorBox(error));
  }
}

async function switchOrg(orgId) {
  await api.refresh(orgId);
  sessionStorage.setItem("orgbase.org", orgId);
  renderShell();
}

function currentOrg() {
  return studio.orgs.find((o) => o.id === api.orgId) || null;
}

function renderShell() {
  const org = currentOrg();
  studio.role = org ? org.role : null;
  const orgPicker = studio.orgs.length
    ? select(studio.orgs.map((o) => [o.id, `${o.name} (${o.role})`]), api.orgId || "", {
      "aria-label": "Organisation",
      id: "org-switcher",
      onchange: (event) => act(event.target, () => switchOrg(event.target.value)),
    })
    : h("p", { class: "who" }, "You belong to no org yet.");
  const nav = h("nav", { "aria-label": "Studio pages", onclick: () => openMenu(false) },
    PAGES.map(([id, label]) => h("a", { href: `#/${id}`, "data-page": id }, label)));
  const signOut = h("button", { type: "button", onclick: (e) => act(e.target, () => api.signOut()) }, "Sign out");
  const main = h("main", { id: "page", tabindex: "-1" });
  // On a phone the pages are a menu behind this button, which names the current page.
  const toggle = h("button", {
    type: "button", id: "nav-toggle", "aria-expanded": "false", "aria-controls": "studio-menu",
    onclick: () => openMenu(toggle.getAttribute("aria-expanded") !== "true"),
  }, h("span", { class: "current" }, "Pages"), h("span", { "aria-hidden": "true" }, "☰"));
  replace(root, h("div", { class: "shell" },
    h("aside", { class: "sidebar" },
      h("div", { class: "topbar" }, h("div", { class: "brand" }, "orgbase studio"), toggle),
      orgPicker,
      h("div", { class: "menu", id: "studio-menu" }, nav,
        h("div", { class: "who" }, studio.user.email, studio.user.is_platform_admin ? " · platform admin" : ""),
        signOut)),
    main));
  route();
}

function openMenu(open) {
  const toggle = document.getElementById("nav-toggle");
  if (!toggle) return;
  toggle.setAttribute("aria-expanded", open ? "true" : "false");
  toggle.closest(".sidebar").classList.toggle("open", open);
}

function route() {
  // A session in the fragment is only ever read at load, for a flow this tab started.
  if (location.hash.includes("access_token=")) history.replaceState(null, "", location.pathname);
  const main = document.getElementById("page");
  if (!main || !api.session) return;
  studio.stop();
  studio.stop = () => {};
  const [id, ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  const entry = PAGES.find(([pageId]) => pageId === id) || PAGES[0];
  for (const link of document.querySelectorAll("nav a")) {
    if (link.dataset.page === entry[0]) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${entry[1]} · orgbase studio`;
  const current = document.querySelector("#nav-toggle .current");
  if (current) current.textContent = entry[1];
  openMenu(false);
  main.replaceChildren();
  const context = { ...studio, org: currentOrg(), params: rest.map(decodeURIComponent), onStop: (fn) => { studio.stop = fn; } };
  if (!context.org && entry[2].needsOrg !== false) {
    main.append(h("h1", {}, entry[1]), h("div", { class: "empty" }, "Choose or create an org to see this page."));
    return;
  }
  entry[2].render(main, context);
}

window.addEventListener("hashchange", route);

/** Back from a provider's sign-in: the session is in the fragment (memory only), adopted
 * only for a flow this tab started, and never over a session without asking. */
async function fromProvider() {
  const back = takeReturn();
  if (back.kind === "none") return false;
  if (back.kind === "foreign") {
    // Someone else's link: never adopted. Carry on as if it had not been there.
    if (await api.resume()) await enter();
    else showSignIn("A sign-in this tab did not start was ignored.");
    return true;
  }
  if (back.kind === "error") {
    showSignIn(back.message);
    return true;
  }
  const arriving = { access_token: back.token, expires_in: back.expiresIn, org_id: tokenClaims(back.token).org || null };
  if (await api.resume()) {
    const current = api.session.user.email;
    const incoming = await api.get("/v1/auth/user", { headers: { Authorization: `Bearer ${back.token}` }, auth: false });
    if (!(await askToSwitch(root, current, incoming.email))) {
      await enter();
      return true;
    }
    await api.signOut();
  }
  api.adopt(arriving);
  api.session.user = await api.get("/v1/auth/user");
  await enter();
  return true;
}

(async () => {
  try {
    if (await fromProvider()) return;
    if (await api.resume()) await enter();
    else showSignIn();
  } catch (error) {
    replace(root, errorBox(error));
  }
})();
