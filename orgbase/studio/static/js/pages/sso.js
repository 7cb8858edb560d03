// The org's sign-in policy (org admins): "members must use MFA", its OpenID provider and
// the email domains whose users must come through it.
import { act, badge, errorBox, field, h, load, select, table, toast } from "../ui.js";

export function render(main, { api, org }) {
  const body = h("div");
  main.append(h("h1", {}, "Sign-in policy"), body);
  if (!["owner", "admin"].includes(org.role)) {
    body.append(h("div", { class: "empty" }, "Org admins set the sign-in policy."));
    return;
  }
  const base = `/v1/orgs/${org.id}`;
  const refresh = () => load(body, async () => {
    const [policy, sso] = await Promise.all([api.get(`${base}/auth-policy`), api.get(`${base}/sso`)]);
    const mfa = h("input", { type: "checkbox", id: "mfa-required", checked: policy.mfa_required });
    const mfaErrors = h("div");
    const mfaForm = h("form", {
      onsubmit: async (event) => {
        event.preventDefault();
        const ok = await act(event.submitter, () => api.put(`${base}/auth-policy`, { mfa_required: mfa.checked }), mfaErrors);
        if (ok) toast("Saved", "good");
      },
    }, h("label", { class: "check", for: "mfa-required" }, mfa, "Members must use a second factor (MFA)"), mfaErrors, h("button", { type: "submit" }, "Save"));

    const issuer = h("input", { name: "issuer", type: "url", required: true, value: sso.issuer || "" });
    const clientId = h("input", { name: "client_id", required: true, value: sso.client_id || "" });
    const secret = h("input", { name: "client_secret", type: "password", required: true, autocomplete: "off" });
    const role = select([["member", "member"], ["viewer", "viewer"], ["admin", "admin"]], sso.default_role || "member", { name: "default_role" });
    const ssoErrors = h("div");
    const ssoForm = h("form", {
      id: "sso-form",
      onsubmit: async (event) => {
        event.preventDefault();
        const ok = await act(event.submitter, () => api.put(`${base}/sso`, {
          issuer: issuer.value, client_id: clientId.value, client_secret: secret.value, default_role: role.value,
        }), ssoErrors);
        if (ok) { toast("SSO saved", "good"); refresh(); }
      },
    }, field("Issuer (OpenID provider URL)", issuer), field("Client id", clientId),
    field("Client secret", secret), field("Role of new members", role), ssoErrors,
    h("button", { class: "primary", type: "submit" }, "Save SSO"));

    const domain = h("input", { name: "domain", required: true, placeholder: "example.com" });
    const domainErrors = h("div");
    const domainForm = h("form", {
      onsubmit: async (event) => {
        event.preventDefault();
        const ok = await act(event.submitter, () => api.post(`${base}/sso/domains`, { domain: domain.value }), domainErrors);
        if (ok) refresh();
      },
    }, field("Email domain", domain), domainErrors, h("button", { type: "submit" }, "Claim domain"));
    // A claim is proven by its TXT record in the domain's DNS; the gateway looks it up.
    const verifyErrors = h("div");
    const verify = (d) => h("button", {
      type: "button",
      "data-verify": d.domain,
      onclick: async (event) => {
        const ok = await act(event.target, () => api.post(`${base}/sso/domains/${encodeURIComponent(d.domain)}/verify`), verifyErrors);
        if (ok) { toast("Domain verified", "good"); refresh(); }
      },
    }, "Verify");
    const record = (d) => d.verification
      ? h("span", {}, h("code", {}, `${d.verification.type} ${d.verification.name}`), " = ", h("code", {}, d.verification.value), " ", verify(d))
      : "";
    return h("div", {},
      h("section", { class: "panel" }, h("h2", {}, "Second factor"), mfaForm),
      h("section", { class: "panel" }, h("h2", {}, "Single sign-on"),
        h("p", { class: "hint" }, "Owners change SSO, with a second factor verified in this session."),
        sso.issuer ? h("p", { id: "sso-status" }, "Provider: ", h("code", {}, sso.issuer)) : h("p", { id: "sso-status" }, "No provider yet."),
        ssoForm,
        h("h3", {}, "Domains"),
        sso.domains.length
          ? table([
            { label: "Domain", key: "domain" },
            { label: "Status", render: (d) => badge(d.verified ? "verified" : "pending: publish its DNS record", d.verified ? "good" : "warn") },
            { label: "Proof", render: record },
          ], sso.domains)
          : h("p", {}, "No domain claimed."),
        verifyErrors,
        domainForm));
  });
  refresh().catch((error) => body.append(errorBox(error)));
}
