// A real OpenID Provider (oidc-provider, the certified implementation) for the OIDC
// sign-in tests. Usage: node provider.mjs PORT; CONFIG (env) is JSON:
// {"clients": [...oidc-provider client metadata], "jwks": {"keys": [private JWKs]}}.
// Test-only control routes: POST /test/account {sub, email, email_verified} adds or
// replaces an account; POST /test/next-login {sub} picks who signs in at the next
// interaction (no login form: the tests drive the flow over HTTP); POST /test/remove {sub}
// deletes an account (its refresh tokens then fail).
import http from 'node:http';
import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
const config = JSON.parse(process.env.CONFIG);
const issuer = `http://127.0.0.1:${port}`;
const accounts = new Map();
let nextLogin = null;

const provider = new Provider(issuer, {
  clients: config.clients,
  jwks: config.jwks,
  cookies: { keys: ['test-cookie-key-1'] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  scopes: ['openid', 'email', 'profile', 'offline_access'],
  features: { devInteractions: { enabled: false } },
  pkce: { required: () => true },
  ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, RefreshToken: 3600, Grant: 3600, Interaction: 600, Session: 3600 },
  issueRefreshToken: async () => true,
  async findAccount(ctx, sub) {
    const account = accounts.get(sub);
    if (!account) return undefined;
    return { accountId: sub, async claims() { return { sub, ...account }; } };
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
});
provider.proxy = false;

function readJson(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => { try { resolve(body ? JSON.parse(body) : {}); } catch (e) { reject(e); } });
  });
}

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params } = details;
  let result;
  if (prompt.name === 'login') {
    if (!nextLogin || !accounts.has(nextLogin)) {
      result = { error: 'access_denied', error_description: 'no test account to sign in' };
    } else {
      result = { login: { accountId: nextLogin } };
    }
  } else {
    const grant = new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
    grant.addOIDCScope(String(params.scope));
    result = { consent: { grantId: await grant.save() } };
  }
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
}

const callback = provider.callback();
http.createServer(async (req, res) => {
  try {
    if (req.url.startsWith('/test/')) {
      const body = await readJson(req);
      if (req.url === '/test/account') accounts.set(body.sub, { email: body.email, email_verified: body.email_verified });
      else if (req.url === '/test/next-login') nextLogin = body.sub;
      else if (req.url === '/test/remove') accounts.delete(body.sub);
      res.writeHead(204).end();
      return;
    }
    if (req.url.startsWith('/interaction/')) {
      await interaction(req, res);
      return;
    }
    callback(req, res);
  } catch (err) {
    res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err && err.stack));
  }
}).listen(port, '127.0.0.1', () => { console.log(`listening ${issuer}`); });
