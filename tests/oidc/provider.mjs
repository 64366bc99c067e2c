// A real OpenID Connect provider (panva's oidc-provider) for Forløp's tests: never shipped, never run in production.
//
//   node provider.mjs config.json
//
// config.json: {"port": N, "issuer": "http://127.0.0.1:N", "accounts": {"login": {claims}}, "clients": [...]}
// ("clients" is optional: forlop, annen-app and politi-system below are the default).
//
// Besides the provider's own endpoints, the same port answers test-only control requests under /__test/
// (JSON in, JSON out): accounts/{login}, mischief, rotate, health. See tests/suite/oidc.py.
//
// A key rotation builds a new Provider with the new key set and routes every later request to it: the provider reads
// its keys once, at construction, and its memory adapter is shared by all instances, so sessions, interactions,
// codes and grants survive the swap.

import './clock.mjs'; // first: everything below reads the suite's clock

import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { randomBytes, randomUUID } from 'node:crypto';

import Provider, { errors } from 'oidc-provider';
import { CompactSign, decodeProtectedHeader, exportJWK, generateKeyPair, importJWK } from 'jose';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const { port, issuer } = config;
const accounts = new Map(Object.entries(config.accounts ?? {}));

const REDIRECT_URI = /^http:\/\/(127\.0\.0\.1:\d+|testserver)\/login\/oidc\/[a-z0-9_-]+\/callback$/;
const POST_LOGOUT_REDIRECT_URI = /^http:\/\/(127\.0\.0\.1:\d+|testserver)\/login(\?.*)?$/;
const RESOURCES = new Set(['https://forlop.test/api', 'https://other.test/api']);
const RESOURCE_SCOPE = 'read write tasks';
const RP_SCOPE = 'openid profile email groups';

// Registered URIs satisfy the client schema; the patterns above are what is really allowed (the test servers run on
// free ports).
const rp = (clientId, secret) => ({
  client_id: clientId,
  client_secret: secret,
  client_name: clientId,
  token_endpoint_auth_method: 'client_secret_basic',
  grant_types: ['authorization_code'],
  response_types: ['code'],
  redirect_uris: [`http://127.0.0.1:1/login/oidc/${clientId}/callback`],
  post_logout_redirect_uris: ['http://127.0.0.1:1/login'],
});
const clients = config.clients ?? [
  rp('forlop', 'forlop-secret'),
  rp('annen-app', 'annen-secret'),
  {
    client_id: 'politi-system',
    client_secret: 'politi-secret',
    client_name: 'politi-system',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
  },
];

const cookieKeys = [randomBytes(32).toString('base64url')];

async function newSigningKey() {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  return { ...(await exportJWK(privateKey)), kid: randomUUID(), alg: 'RS256', use: 'sig' };
}

let signingKeys = [await newSigningKey()]; // the first one signs
let provider;
let mischief; // one-shot: the kind of harm done to the next id_token the token endpoint issues

function account(login) {
  if (!accounts.has(login)) return undefined;
  return {
    accountId: login,
    // Read at issue time, so /__test/accounts changes the next token.
    async claims() { return { ...accounts.get(login), sub: login }; },
  };
}

// Every RP here is first party: its grant is given without a consent screen ("skip consent" in the recipes).
async function loadExistingGrant(ctx) {
  const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
  if (grantId) {
    const grant = await ctx.oidc.provider.Grant.find(grantId);
    if (grant && grant.accountId === ctx.oidc.session.accountId) return grant;
  }
  const grant = new ctx.oidc.provider.Grant({
    clientId: ctx.oidc.client.clientId,
    accountId: ctx.oidc.session.accountId,
  });
  grant.addOIDCScope(RP_SCOPE);
  for (const resource of RESOURCES) grant.addResourceScope(resource, RESOURCE_SCOPE);
  await grant.save();
  return grant;
}

const page = (title, body) => `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${title}</title></head>
<body><h1>${title}</h1>${body}</body></html>`;

async function logoutSource(ctx, form) {
  // Signs out without asking: the form gets the "yes" a user's click would send, and submits itself.
  const confirmed = form.replace('</form>', '<input type="hidden" name="logout" value="yes"/></form>');
  ctx.body = page('Signing out', `${confirmed}
<button type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
<script>document.getElementById('op.logoutForm').submit();</script>`);
}

async function postLogoutSuccessSource(ctx) {
  ctx.body = page('Signed out', '<p>You are signed out of the test provider.</p>');
}

async function renderError(ctx, out) {
  ctx.type = 'html';
  const lines = Object.entries(out).map(([k, v]) => `<p><strong>${escape(k)}</strong>: ${escape(v)}</p>`);
  ctx.body = page('Test provider error', lines.join(''));
}

function buildProvider() {
  const p = new Provider(issuer, {
    clients,
    jwks: { keys: signingKeys },
    findAccount: (ctx, sub) => account(sub),
    loadExistingGrant,
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
      groups: ['groups'],
    },
    conformIdTokenClaims: false, // the claims of the granted scopes go into the ID token, groups with them
    pkce: { required: () => true },
    // Cookies know no ports: the providers of one test (a municipality's and the police's) keep theirs apart by name.
    cookies: {
      keys: cookieKeys,
      names: { session: `_session_${port}`, interaction: `_interaction_${port}`, resume: `_resume_${port}` },
    },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      rpInitiatedLogout: { enabled: true, logoutSource, postLogoutSuccessSource },
      resourceIndicators: {
        enabled: true,
        defaultResource: (ctx, client, oneOf) => oneOf,
        useGrantedResource: () => false,
        getResourceServerInfo(ctx, resourceIndicator) {
          if (!RESOURCES.has(resourceIndicator)) throw new errors.InvalidTarget();
          return {
            scope: RESOURCE_SCOPE,
            audience: resourceIndicator,
            accessTokenFormat: 'jwt',
            accessTokenTTL: 3600,
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    renderError,
    ttl: {
      AccessToken: 3600, ClientCredentials: 3600, IdToken: 3600, Interaction: 3600, Session: 86400, Grant: 86400,
    },
  });
  p.Client.prototype.redirectUriAllowed = (uri) => REDIRECT_URI.test(uri);
  p.Client.prototype.postLogoutRedirectUriAllowed = (uri) => POST_LOGOUT_REDIRECT_URI.test(uri);
  p.use(interactions);
  p.use(harm);
  p.on('server_error', (ctx, err) => console.error('server_error', err));
  return p;
}

// -- the sign-in page ---------------------------------------------------------------------------------------------

function escape(value) {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

async function readBody(ctx) {
  const chunks = [];
  for await (const chunk of ctx.req) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

// A login form that accepts any password but only the logins in `accounts`: an unknown login ends the interaction
// with access_denied, so the RP's callback gets ?error=access_denied (a visible failure, never a loop).
async function interactions(ctx, next) {
  const match = ctx.path.match(/^\/interaction\/([^/]+)$/);
  if (!match) return next();
  ctx.set('cache-control', 'no-store');
  const p = ctx.oidc?.provider ?? provider;
  const details = await p.interactionDetails(ctx.req, ctx.res);
  if (details.uid !== match[1]) ctx.throw(400, 'interaction mismatch');
  if (ctx.method === 'GET') {
    if (details.prompt.name !== 'login') ctx.throw(501, `prompt ${details.prompt.name} is not handled`);
    ctx.type = 'html';
    ctx.body = page('Sign in to the test provider', `
<form id="login" method="post" action="/interaction/${escape(details.uid)}" autocomplete="off">
  <label>Login
    <input required type="text" name="login" value="${escape(details.params.login_hint ?? '')}" autofocus></label>
  <label>Password <input type="password" name="password"></label>
  <button type="submit" name="submit" value="login">Sign in</button>
</form>`);
    return undefined;
  }
  if (ctx.method !== 'POST') ctx.throw(405);
  const login = new URLSearchParams(await readBody(ctx)).get('login') ?? '';
  const result = accounts.has(login)
    ? { login: { accountId: login } }
    : { error: 'access_denied', error_description: 'unknown account at the test provider' };
  await p.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
  return undefined;
}

// -- mischief: the next ID token from the token endpoint, harmed -------------------------------------------------

const b64json = (part) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
const now = () => Math.floor(Date.now() / 1000);

async function resign(header, payload, jwk) {
  const key = await importJWK(jwk, 'RS256');
  return new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
    .setProtectedHeader({ ...header, alg: 'RS256', kid: jwk.kid })
    .sign(key);
}

async function harmed(idToken, kind) {
  const [h, body, signature] = idToken.split('.');
  const header = decodeProtectedHeader(idToken);
  const payload = b64json(body);
  const current = signingKeys[0];
  switch (kind) {
    case 'tamper': {
      const changed = { ...payload, groups: [...(payload.groups ?? []), 'forlop-administrator'] };
      return `${h}.${Buffer.from(JSON.stringify(changed)).toString('base64url')}.${signature}`;
    }
    case 'wrong_aud':
      return resign(header, { ...payload, aud: 'annen-app', azp: undefined }, current);
    case 'expired':
      return resign(header, { ...payload, iat: now() - 7200, auth_time: now() - 7200, exp: now() - 3600 }, current);
    case 'wrong_nonce':
      return resign(header, { ...payload, nonce: `${payload.nonce ?? ''}-not-yours` }, current);
    case 'wrong_iss':
      return resign(header, { ...payload, iss: 'http://127.0.0.1:1' }, current);
    case 'unknown_key':
      return resign(header, payload, await newSigningKey());
    default:
      throw new Error(`unknown mischief ${kind}`);
  }
}

async function harm(ctx, next) {
  await next();
  if (mischief && ctx.path === '/token' && typeof ctx.body?.id_token === 'string') {
    const kind = mischief;
    mischief = undefined;
    ctx.body = { ...ctx.body, id_token: await harmed(ctx.body.id_token, kind) };
  }
}

// -- /__test/ ------------------------------------------------------------------------------------------------------

const MISCHIEF = new Set(['tamper', 'wrong_aud', 'expired', 'wrong_nonce', 'wrong_iss', 'unknown_key']);

async function control(req, res) {
  const url = new URL(req.url, issuer);
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  const reply = (status, body) => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  };
  let input;
  try {
    input = text ? JSON.parse(text) : {};
  } catch {
    return reply(400, { error: 'body is not JSON' });
  }
  const path = url.pathname.slice('/__test/'.length);
  if (req.method === 'GET' && path === 'health') return reply(200, { ok: true, kids: signingKeys.map((k) => k.kid) });
  if (req.method !== 'POST') return reply(405, { error: 'POST only' });
  const accountPath = path.match(/^accounts\/([^/]+)$/);
  if (accountPath) {
    const login = decodeURIComponent(accountPath[1]);
    if (typeof input.claims !== 'object' || input.claims === null) return reply(400, { error: 'claims missing' });
    accounts.set(login, input.claims);
    return reply(200, { login, claims: input.claims });
  }
  if (path === 'mischief') {
    if (!MISCHIEF.has(input.kind)) return reply(400, { error: `kind must be one of ${[...MISCHIEF].join(', ')}` });
    mischief = input.kind;
    return reply(200, { kind: mischief });
  }
  if (path === 'rotate') {
    const fresh = await newSigningKey();
    signingKeys = input.keep_old ? [fresh, ...signingKeys] : [fresh];
    provider = buildProvider();
    handler = provider.callback();
    return reply(200, { kid: fresh.kid, published: signingKeys.map((k) => k.kid) });
  }
  return reply(404, { error: `no such control: ${path}` });
}

provider = buildProvider();
let handler = provider.callback();

createServer((req, res) => {
  if (req.url.startsWith('/__test/')) {
    control(req, res).catch((err) => {
      console.error(err);
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: String(err) }));
    });
    return;
  }
  handler(req, res);
}).listen(port, '127.0.0.1', () => console.log(`oidc test provider ${issuer} listening`));
