// supabase-js's auth.admin, unchanged, against orgbase's /auth/v1/admin: with the
// platform's service key (as Supabase's service role key) and with an org admin's API
// key (its org's members only); and signInAnonymously(), which orgbase refuses. Reads URL,
// ANON_KEY, SERVICE_KEY, ORG_KEY, MEMBER_ID, STRANGER_ID, PASSWORD; prints one JSON line
// of what was seen; exits 1 on any surprise.
import { createClient } from "@supabase/supabase-js";
import WebSocket from "ws";

const { URL, ANON_KEY, SERVICE_KEY, ORG_KEY, MEMBER_ID, STRANGER_ID, PASSWORD } = process.env;
const client = (key) =>
  createClient(URL, key, {
    realtime: { transport: WebSocket },
    auth: { persistSession: false, autoRefreshToken: false },
  });
const must = ({ data, error }, what) => {
  if (error) throw new Error(`${what}: ${error.code} ${error.message}`);
  return data;
};
const seen = {};

const platform = client(SERVICE_KEY).auth.admin;
const email = `admin-js-${Date.now()}@example.test`;
const { user } = must(
  await platform.createUser({ email, password: PASSWORD, email_confirm: true, user_metadata: { plan: "pro" } }),
  "createUser",
);
seen.created = { email: user.email, confirmed: Boolean(user.email_confirmed_at), plan: user.user_metadata.plan };
const page = must(await platform.listUsers({ page: 1, perPage: 1 }), "listUsers");
seen.listed = { count: page.users.length, total: page.total, nextPage: page.nextPage };
seen.fetched = must(await platform.getUserById(user.id), "getUserById").user.email;
seen.updated = must(
  await platform.updateUserById(user.id, { user_metadata: { seats: 3 } }),
  "updateUserById",
).user.user_metadata;
const link = must(await platform.generateLink({ type: "magiclink", email }), "generateLink");
seen.link = { type: link.properties.verification_type, otp: /^\d{6}$/.test(link.properties.email_otp) };
const anon = client(ANON_KEY);
const verified = must(await anon.auth.verifyOtp({ email, token: link.properties.email_otp, type: "magiclink" }), "verifyOtp");
seen.linkSignedIn = verified.user.id === user.id;
must(await platform.deleteUser(user.id), "deleteUser");
seen.deletedGone = (await platform.getUserById(user.id)).error?.status ?? null;

const org = client(ORG_KEY).auth.admin;
const members = must(await org.listUsers(), "org listUsers");
seen.orgListed = members.users.map((u) => u.id).includes(MEMBER_ID);
seen.orgStranger = (await org.getUserById(STRANGER_ID)).error?.code ?? null;
seen.orgCreate = (await org.createUser({ email: `x-${Date.now()}@example.test` })).error?.code ?? null;
must(await org.deleteUser(MEMBER_ID), "org deleteUser");
seen.orgAfter = must(await org.listUsers(), "org listUsers").users.map((u) => u.id).includes(MEMBER_ID);

seen.anonymous = (await anon.auth.signInAnonymously()).error?.code ?? null;
console.log(JSON.stringify(seen));
process.exit(0);
