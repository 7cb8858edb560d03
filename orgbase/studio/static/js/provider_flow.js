// "Sign in with ..." flows the studio itself starts. A session arriving in the URL's
// fragment is adopted only when it answers a flow THIS tab started: before leaving for the
// provider the studio keeps a random nonce in sessionStorage and puts it in the address
// it asks to come back to (?flow=...). A link someone else made (#access_token=... of the
// attacker's own account: login CSRF) carries no nonce of ours and is ignored; and a
// session arriving over an existing one is adopted only when the user says so.
import { h, replace } from "./ui.js";

const FLOW_KEY = "orgbase.provider_flow";

function nonce() {
  const bytes = new Uint8Array(24);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The URL that starts a sign-in with ``provider`` from this tab (a new nonce each time). */
export function startUrl(provider) {
  const flow = nonce();
  sessionStorage.setItem(FLOW_KEY, flow);
  const back = `${location.origin}/studio/?flow=${flow}`;
  return `/auth/v1/authorize?provider=${encodeURIComponent(provider)}&redirect_to=${encodeURIComponent(back)}`;
}

/** What the URL brings back from a provider, once: {kind: "none" | "foreign" | "error" |
 * "session", ...}. The fragment and the flow are removed from the address either way. */
export function takeReturn() {
  const fragment = new URLSearchParams(location.hash.replace(/^#/, ""));
  const token = fragment.get("access_token");
  const errorCode = fragment.get("error_code");
  if (!token && !errorCode) return { kind: "none" };
  const flow = new URLSearchParams(location.search).get("flow");
  const expected = sessionStorage.getItem(FLOW_KEY);
  sessionStorage.removeItem(FLOW_KEY);
  history.replaceState(null, "", location.pathname);
  if (!expected || flow !== expected) return { kind: "foreign" };
  if (errorCode) return { kind: "error", message: fragment.get("error_description") || errorCode };
  return { kind: "session", token, expiresIn: Number(fragment.get("expires_in") || 900) };
}

/** Signed in as ``current`` already: keep that session, or switch to ``arriving``? */
export function askToSwitch(root, current, arriving) {
  return new Promise((resolve) => {
    const keep = h("button", { type: "button", id: "keep-session", class: "primary", onclick: () => resolve(false) }, `Stay signed in as ${current}`);
    const swap = h("button", { type: "button", id: "switch-session", onclick: () => resolve(true) }, `Switch to ${arriving}`);
    replace(root, h("main", { class: "signin panel" }, h("h1", {}, "Switch accounts?"),
      h("p", {}, `You are signed in as ${current}. A sign-in this tab started came back as ${arriving}.`),
      h("p", {}, keep, " ", swap)));
  });
}
