// Sign in as the demo user, write a row and read it back with Supabase's JavaScript client.
import { createClient } from "@supabase/supabase-js";
import WebSocket from "ws"; // Node 20 has no WebSocket of its own; the client wants one

const url = process.env.API_URL ?? "http://127.0.0.1:8000";
const supabase = createClient(url, process.env.ANON_KEY, {
  realtime: { transport: WebSocket },
});

const { error } = await supabase.auth.signInWithPassword({
  email: "demo@orgbase.local",
  password: "demo-password-2026",
}); // enters the user's last used org: the demo org
if (error) throw error;

const written = await supabase.from("items").insert({ title: "from supabase-js", status: "open" });
if (written.error) throw written.error;

const { data, error: readError } = await supabase
  .from("items")
  .select("id, title")
  .eq("title", "from supabase-js");
if (readError) throw readError;
console.log(data);
await supabase.auth.signOut();
