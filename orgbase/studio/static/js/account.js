// Account screens before the studio proper: sign-up with the mailed confirmation code,
// "forgot password" (recovery code + new password), the second-factor challenge after
// sign-in, and "sign in with ..." buttons. They speak GoTrue's API (/auth/v1) with the
// deployment's publishable key (from /v1/auth/client-config).
import { startUrl } from "./provider_flow.js";
import { actionForm, errorBox, field, h, replace } from "./ui.js";

let config = null;

export async function clientConfig(api) {
  if (!config) config = await api.call("GET", "/v1/auth/client-config", { auth: false });
  return config;
}

function gotrue(api, method, path, body, token) {
  const headers = { apikey: config.publishable_key || "" };
  if (token) headers.Authorization = `Bearer ${token}`;
  return api.call(method, `/auth/v1${path}`, { body, headers, auth: false });
}

function input(name, type = "text", attrs = {}) {
  return h("input", { name, type, required: true, ...attrs });
}

function panel(root, title, ...children) {
  replace(root, h("main", { class: "signin panel" }, h("h1", {}, title), ...children));
}

/** Links and provider buttons under the sign-in form. */
export function signInExtras(api, root, showSignIn) {
  const extras = h("div", { class: "signin-extras" },
    h("a", { href: "#/signup", id: "to-signup", onclick: (e) => { e.preventDefault(); showSignUp(api, root, showSignIn); } }, "Create an account"),
    " · ",
    h("a", { href: "#/forgot", id: "to-forgot", onclick: (e) => { e.preventDefault(); showForgot(api, root, showSignIn); } }, "Forgot password?"));
  clientConfig(api).then((cfg) => {
    for (const provider of cfg.providers) {
      const url = `/auth/v1/authorize?provider=${encodeURIComponent(provider.name)}`;
      // A click starts a flow of this tab's own (a nonce the way back must carry).
      const start = (e) => { e.preventDefault(); location.assign(startUrl(provider.name)); };
      extras.append(h("p", {}, h("a", { class: "button provider", href: url, "data-provider": provider.name, onclick: start }, `Sign in with ${provider.label}`)));
    }
  }).catch(() => {});
  return extras;
}

export async function showSignUp(api, root, showSignIn) {
  await clientConfig(api);
  const email = input("email", "email", { autocomplete: "username" });
  const password = input("password", "password", { autocomplete: "new-password", minlength: 10 });
  const form = actionForm("Create account",
    () => gotrue(api, "POST", "/signup", { email: email.value, password: password.value }),
    () => showConfirm(api, root, showSignIn, email.value),
    field("Email", email), field("Password (10 characters or more)", password));
  panel(root, "Create an account", form, h("p", {}, h("a", { href: "#", onclick: (e) => { e.preventDefault(); showSignIn(); } }, "Back to sign-in")));
  email.focus();
}

function showConfirm(api, root, showSignIn, address) {
  const code = input("code", "text", { inputmode: "numeric", autocomplete: "one-time-code", pattern: "[0-9]{6}" });
  // "email": the code of a new account's confirmation, or, when the address already had
  // an account, the sign-in code mailed to its owner instead (sign-up tells nobody which).
  const form = actionForm("Confirm",
    () => gotrue(api, "POST", "/verify", { type: "email", email: address, token: code.value.trim() }),
    () => showSignIn("Your email is confirmed: sign in.", "good"),
    h("p", {}, `We sent a 6-digit code to ${address}.`), field("Code", code));
  panel(root, "Confirm your email", form);
  code.focus();
}

export async function showForgot(api, root, showSignIn) {
  await clientConfig(api);
  const email = input("email", "email", { autocomplete: "username" });
  const form = actionForm("Send a code",
    () => gotrue(api, "POST", "/recover", { email: email.value }).then(() => true),
    () => showReset(api, root, showSignIn, email.value),
    field("Email", email));
  panel(root, "Forgot your password?", form, h("p", {}, h("a", { href: "#", onclick: (e) => { e.preventDefault(); showSignIn(); } }, "Back to sign-in")));
  email.focus();
}

function showReset(api, root, showSignIn, address) {
  const code = input("code", "text", { inputmode: "numeric", autocomplete: "one-time-code" });
  const password = input("password", "password", { autocomplete: "new-password", minlength: 10 });
  const form = actionForm("Set the new password", async () => {
    const session = await gotrue(api, "POST", "/verify", { type: "recovery", email: address, token: code.value.trim() });
    await gotrue(api, "PUT", "/user", { password: password.value }, session.access_token);
    await gotrue(api, "POST", "/logout?scope=local", undefined, session.access_token);
    return true;
  }, () => showSignIn("Your password is changed: sign in with it.", "good"),
  h("p", {}, `If ${address} has an account, a 6-digit code is on its way.`), field("Code", code), field("New password", password));
  panel(root, "Choose a new password", form);
  code.focus();
}

/** After a password sign-in: a user with a verified factor proves it (the session -> aal2). */
export async function challengeIfEnrolled(api, root) {
  await clientConfig(api);
  const me = await gotrue(api, "GET", "/user", undefined, api.token);
  const factor = (me.factors || []).find((f) => f.status === "verified");
  if (!factor || tokenClaims(api.token).aal === "aal2") return;
  await new Promise((resolve) => {
    const code = input("code", "text", { inputmode: "numeric", autocomplete: "one-time-code" });
    const form = actionForm("Verify", async () => {
      await verifyFactor(api, factor.id, code.value.trim());
      return true;
    }, resolve, h("p", {}, "Enter the code from your authenticator app (or a recovery code)."), field("Code", code));
    panel(root, "Two-step verification", form);
    code.focus();
  });
}

export async function verifyFactor(api, factorId, code) {
  const challenge = await gotrue(api, "POST", `/factors/${factorId}/challenge`, {}, api.token);
  const verified = await gotrue(api, "POST", `/factors/${factorId}/verify`, { challenge_id: challenge.id, code }, api.token);
  // The session is aal2 now: a refresh (the cookie's token, same session) carries it.
  await api.refresh(api.orgId || undefined);
  return verified;
}

export async function enrollFactor(api, name) {
  await clientConfig(api);
  return gotrue(api, "POST", "/factors", { factor_type: "totp", friendly_name: name }, api.token);
}

export async function currentUser(api) {
  await clientConfig(api);
  return gotrue(api, "GET", "/user", undefined, api.token);
}

export async function removeFactor(api, factorId) {
  return gotrue(api, "DELETE", `/factors/${factorId}`, undefined, api.token);
}

export function tokenClaims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part));
  } catch {
    return {};
  }
}

/** The QR code (an SVG document from the server) as an element, without innerHTML. */
export function qrElement(svgText) {
  const doc = new DOMParser().parseFromString(svgText, "image/svg+xml");
  const svg = doc.documentElement;
  if (svg.nodeName !== "svg") return h("p", {}, "(no QR code)");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "QR code for your authenticator app");
  return document.importNode(svg, true);
}

export { errorBox };
