// Development only: the mail the local catcher received (GET /v1/dev/mail), so a developer
// can read confirmation and recovery codes without a mail account.
import { act, empty, field, fmtDate, h, replace } from "../ui.js";

export const needsOrg = false;

export function render(main, { api, user }) {
  const to = h("input", { name: "mail-to", type: "email", value: user.email, required: true });
  const list = h("div", { id: "mail-list" });
  const show = async () => {
    const messages = await api.get(`/v1/dev/mail?to=${encodeURIComponent(to.value)}`, { auth: false });
    replace(list, messages.length
      ? messages.map((m) => h("article", { class: "panel mail" },
        h("h2", {}, m.subject),
        h("p", { class: "muted" }, `to ${m.to.join(", ")} · ${fmtDate(new Date(m.received_at * 1000).toISOString())}`),
        h("pre", {}, m.body)))
      : empty("No mail to this address."));
  };
  const errors = h("div");
  const button = h("button", { type: "submit" }, "Show mail");
  main.append(h("h1", {}, "Mail (development)"),
    h("form", { onsubmit: (e) => { e.preventDefault(); act(button, show, errors); } }, field("To", to), errors, button),
    list);
  act(button, show, errors);
}
