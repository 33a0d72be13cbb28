// openid-client (Node), unmodified: discovery, authorization code + PKCE
// through Roster's login page (a cookie-keeping fetch stands in for the
// browser), ID token validation (signature, iss, aud, nonce, at_hash, the RFC
// 9207 iss parameter), userinfo, and refresh.
const { Issuer, generators } = require('openid-client');
const assert = require('node:assert/strict');

const unescape = (s) => s.replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&#39;/g, "'").replace(/&amp;/g, '&');

(async () => {
  const [base, clientId, redirectUri, username, password, alg] = process.argv.slice(2);
  const issuer = await Issuer.discover(base);
  assert.equal(issuer.metadata.authorization_endpoint, `${base}/oauth/authorize`);
  assert.deepEqual(issuer.metadata.code_challenge_methods_supported, ['S256']);
  const client = new issuer.Client({
    client_id: clientId,
    token_endpoint_auth_method: 'none',
    redirect_uris: [redirectUri],
    response_types: ['code'],
    id_token_signed_response_alg: alg,
  });
  const code_verifier = generators.codeVerifier();
  const nonce = generators.nonce();
  const state = generators.state();
  const url = client.authorizationUrl({
    scope: 'openid profile email',
    code_challenge: generators.codeChallenge(code_verifier),
    code_challenge_method: 'S256',
    nonce,
    state,
  });
  let r = await fetch(url, { redirect: 'manual' });
  assert.equal(r.status, 200, 'the login page');
  const cookie = r.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const html = await r.text();
  const form = [...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1], unescape(m[2])]);
  form.push(['username', username], ['password', password]);
  r = await fetch(`${base}/oauth/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form),
  });
  assert.equal(r.status, 303, `login: ${r.status} ${await r.clone().text()}`);
  const params = client.callbackParams(r.headers.get('location'));
  const tokens = await client.callback(redirectUri, params, { code_verifier, nonce, state });
  const claims = tokens.claims();
  assert.equal(claims.aud, clientId);
  assert.equal(claims.nonce, nonce);
  assert.ok(claims.sid && claims.auth_time && claims.at_hash);
  const info = await client.userinfo(tokens.access_token);
  assert.equal(info.sub, claims.sub);
  assert.equal(info.preferred_username, username);
  const refreshed = await client.refresh(tokens.refresh_token);
  assert.ok(refreshed.access_token);
  console.log(`openid-client: authorization code + PKCE, ID token (${alg}), userinfo, refresh: ok`);
})().catch((e) => { console.error('openid-client code flow FAILED:', e); process.exit(1); });
