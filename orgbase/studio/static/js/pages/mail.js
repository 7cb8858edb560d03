// Development only: the mail the local catcher received (GET /v1/dev/mail), so a developer
// can read confirmation and recovery codes without a mail account. The recent recipients
// are listed: no need to know an address to find its mail.
import { act, empty, field, fmtDate, h, replace } from "../ui.js";

export const needsOrg = false;

function message(m) {
  return h("article", { class: "panel mail" },
    h("h2", {}, m.subject),
    h("p", { class: "muted" }, `to ${m.to.join(", ")} · ${fmtDate(new Date(m.received_at * 1000).toISOString())}`),
    h("pre", {}, m.body));
}

export function render(main, { api, user }) {
  const to = h("input", { name: "mail-to", type: "email", value: user.email, placeholder: "any address" });
  const recipients = h("select", { id: "mail-recipients", "aria-label": "Recent recipients" });
  const list = h("div", { id: "mail-list" });
  const errors = h("div");
  const pick = (address) => (event) => { to.value = address; act(event.target, show, errors); };
  recipients.addEventListener("change", (event) => { if (recipients.value) pick(recipients.value)(event); });
  async function show() {
    const address = to.value.trim();
    // Every recent message (the catcher keeps what it received): its recipients are
    // listed, so no address needs to be known; an address narrows the list to its mail.
    const recent = await api.get("/v1/dev/mail", { auth: false });
    const seen = [...new Set(recent.flatMap((m) => m.to))];
    replace(recipients, h("option", { value: "" }, `${seen.length} recent recipients…`),
      seen.map((r) => h("option", { value: r, selected: r === address }, r)));
    const messages = address
      ? await api.get(`/v1/dev/mail?to=${encodeURIComponent(address)}`, { auth: false })
      : recent;
    replace(list, messages.length ? messages.map(message)
      : empty(address ? "No mail to this address." : "No mail yet."));
  }
  const button = h("button", { type: "submit" }, "Show mail");
  const all = h("button", { type: "button", onclick: pick("") }, "All recent mail");
  main.append(h("h1", {}, "Mail (development)"),
    h("form", { class: "row", onsubmit: (e) => { e.preventDefault(); act(button, show, errors); } },
      field("To", to), button, all),
    errors, field("Recent recipients", recipients), list);
  act(button, show, errors);
}
