// Peer for bench/data_bench.py: PostGraphile v4 serving api.items through RLS, the JWT
// (EdDSA, orgbase's own tokens) verified with Node's crypto and turned into the same
// transaction-local settings (peer.items trusts them; see bench/data_bench.py).
// BENCH_DSN, BENCH_JWKS, BENCH_PORT, BENCH_WORKERS.
"use strict";
const cluster = require("node:cluster");
const crypto = require("node:crypto");
const fs = require("node:fs");
const http = require("node:http");
const { postgraphile } = require("postgraphile");

const workers = Number(process.env.BENCH_WORKERS || "1");
if (cluster.isPrimary && workers > 1) {
  for (let i = 0; i < workers; i++) cluster.fork();
} else {
  const keys = {};
  for (const jwk of JSON.parse(fs.readFileSync(process.env.BENCH_JWKS, "utf8")).keys) {
    keys[jwk.kid] = crypto.createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, format: "jwk" });
  }
  const claimsOf = (req) => {
    const token = String(req.headers.authorization || "").replace(/^Bearer /, "");
    const [head, body, sig] = token.split(".");
    const header = JSON.parse(Buffer.from(head, "base64url").toString());
    const key = keys[header.kid];
    if (!key || header.alg !== "EdDSA") throw new Error("bad token");
    if (!crypto.verify(null, Buffer.from(`${head}.${body}`), key, Buffer.from(sig, "base64url"))) {
      throw new Error("bad signature");
    }
    const claims = JSON.parse(Buffer.from(body, "base64url").toString());
    if (claims.exp * 1000 < Date.now() || claims.aud !== "orgbase") throw new Error("expired");
    return claims;
  };
  const middleware = postgraphile(process.env.BENCH_DSN, "peer", {
    disableQueryLog: true,
    pgSettings: async (req) => {
      const claims = claimsOf(req);
      return { "orgbase.org_id": claims.org, "orgbase.user_id": claims.sub, "orgbase.role": "viewer" };
    },
  });
  http.createServer(middleware).listen(Number(process.env.BENCH_PORT), "127.0.0.1");
}
