// My account's security: TOTP factors (enrol with a QR code, verify, remove) and the
// recovery codes shown once after the first verification.
import { currentUser, enrollFactor, qrElement, removeFactor, tokenClaims, verifyFactor } from "../account.js";
import { act, badge, field, fmtDate, h, load, replace, table, toast } from "../ui.js";

export const needsOrg = false;

export function render(main, { api }) {
  const body = h("div");
  main.append(h("h1", {}, "Security"), body);
  const refresh = () => load(body, async () => {
    const me = await currentUser(api);
    const level = tokenClaims(api.token).aal || "aal1";
    const factors = me.factors || [];
    const enrolBox = h("div", { id: "enrol" });
    const start = h("button", { type: "button", id: "enrol-totp", onclick: (e) => act(e.target, () => enrol(api, enrolBox, refresh, factors)) }, "Add an authenticator app");
    return h("div", {},
      h("p", {}, "This session: ", badge(level, level === "aal2" ? "good" : "warn")),
      factors.length
        ? table([
          { label: "Name", key: "friendly_name" },
          { label: "Status", render: (f) => badge(f.status, f.status === "verified" ? "good" : "warn") },
          { label: "Added", render: (f) => fmtDate(f.created_at) },
          { label: "", render: (f) => h("button", { type: "button", onclick: (e) => act(e.target, async () => { await removeFactor(api, f.id); toast("Factor removed"); refresh(); }) }, "Remove") },
        ], factors)
        : h("p", {}, "No second factor yet."),
      start, enrolBox);
  });
  refresh();
}

async function enrol(api, box, done, factors) {
  // One pending factor at most: a second click shows the one waiting for its code, and a
  // factor left unverified earlier (a page closed half-way) is dropped before a new one.
  const waiting = box.querySelector("input[name=totp-code]");
  if (waiting) { waiting.focus(); return; }
  for (const stale of factors.filter((f) => f.status === "unverified")) await removeFactor(api, stale.id);
  const factor = await enrollFactor(api, `app-${Math.random().toString(16).slice(2, 8)}`);
  const code = h("input", { name: "totp-code", inputmode: "numeric", autocomplete: "one-time-code", required: true });
  const errors = h("div");
  const submit = h("button", { class: "primary", type: "submit" }, "Verify and turn on");
  const form = h("form", {
    onsubmit: async (event) => {
      event.preventDefault();
      const verified = await act(submit, () => verifyFactor(api, factor.id, code.value.trim()), errors);
      if (!verified) return;
      toast("Two-step verification is on", "good");
      // The list (and this session's level) again, then the codes under it, shown once.
      await done();
      replace(document.getElementById("enrol"), h("div", { class: "panel", id: "recovery-codes" },
        h("h2", {}, "Recovery codes"),
        h("p", {}, "Each works once instead of a code from the app. They are shown only now."),
        h("ul", {}, (verified.recovery_codes || []).map((c) => h("li", {}, h("code", {}, c))))));
    },
  }, field("Code from the app", code), errors, h("div", { class: "row" }, submit,
    h("button", { type: "button", id: "enrol-cancel", onclick: (event) => act(event.target, async () => {
      await removeFactor(api, factor.id);
      replace(box);
      await done();
    }, errors) }, "Cancel")));
  replace(box, h("div", { class: "panel" },
    h("h2", {}, "Scan this with your authenticator app"),
    h("div", { class: "qr", id: "totp-qr" }, qrElement(factor.totp.qr_code)),
    h("p", {}, "Or enter this secret: ", h("code", { id: "totp-secret" }, factor.totp.secret)),
    form));
  code.focus();
}
