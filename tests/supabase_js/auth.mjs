// supabase-js's auth client, unchanged, against orgbase: getClaims() verifies the access
// token with /auth/v1/.well-known/jwks.json, and a newcomer's org flow works from the
// client alone: sign in (no org yet), make an org with orgbase's POST /v1/orgs,
// refreshSession() enters it; a second org likewise; switching back is orgbase's
// /v1/auth/token with org_id, handed to setSession(). Reads URL, ANON_KEY, EMAIL, PASSWORD;
// prints one JSON line of what was seen; exits 1 on any surprise.
import { createClient } from "@supabase/supabase-js";
import WebSocket from "ws";

const { URL, ANON_KEY, EMAIL, PASSWORD } = process.env;
const supabase = createClient(URL, ANON_KEY, {
  realtime: { transport: WebSocket },
  auth: { persistSession: false, autoRefreshToken: false },
});
const must = ({ data, error }, what) => {
  if (error) throw new Error(`${what}: ${error.message}`);
  return data;
};
const post = async (path, body, token) => {
  const answer = await fetch(`${URL}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  if (!answer.ok) throw new Error(`${path}: ${answer.status} ${await answer.text()}`);
  return answer.json();
};
const token = async () => must(await supabase.auth.getSession(), "session").session.access_token;
const claims = async () => must(await supabase.auth.getClaims(), "getClaims");

const seen = {};
must(await supabase.auth.signInWithPassword({ email: EMAIL, password: PASSWORD }), "sign-in");
const first = await claims();
seen.alg = first.header.alg;
seen.signedInOrg = first.claims.org ?? null;
seen.noOrgRead = (await supabase.from("tasks").select("id")).error?.code ?? null;

const orgA = await post("/v1/orgs", { name: "from supabase-js" }, await token());
must(await supabase.auth.refreshSession(), "refresh");
seen.afterCreate = (await claims()).claims.org === orgA.id;
must(await supabase.from("tasks").insert({ title: "in A" }), "insert");

const orgB = await post("/v1/orgs", { name: "second" }, await token());
must(await supabase.auth.refreshSession(), "refresh");
seen.afterSecond = (await claims()).claims.org === orgB.id;
seen.readInB = must(await supabase.from("tasks").select("title"), "read B").map((r) => r.title);

// Switching org: orgbase's token endpoint names the org; the client takes the new session.
const { session } = must(await supabase.auth.getSession(), "session");
const switched = await post(
  "/v1/auth/token",
  { grant_type: "refresh_token", refresh_token: session.refresh_token, org_id: orgA.id },
  session.access_token,
);
must(await supabase.auth.setSession(switched), "setSession");
seen.switchedBack = (await claims()).claims.org === orgA.id;
seen.readInA = must(await supabase.from("tasks").select("title"), "read A").map((r) => r.title);

// A token whose payload was changed does not verify.
const [header, payload, signature] = (await token()).split(".");
const forged = JSON.parse(Buffer.from(payload, "base64url").toString());
forged.org = orgB.id;
const tampered = `${header}.${Buffer.from(JSON.stringify(forged)).toString("base64url")}.${signature}`;
seen.tamperedError = (await supabase.auth.getClaims(tampered)).error?.message ?? null;
console.log(JSON.stringify(seen));
process.exit(0);
