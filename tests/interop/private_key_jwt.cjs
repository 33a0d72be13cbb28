// openid-client authenticates to Roster with private_key_jwt (RFC 7523 §2.2):
//   node private_key_jwt.cjs keygen DIR              writes DIR/private.json and DIR/jwks.json
//   node private_key_jwt.cjs run BASE CLIENT_ID DIR  client_credentials, then introspection, both with assertions
const fs = require('fs');
const path = require('path');
const jose = require('jose');
const { Issuer } = require('openid-client');

function assert(cond, what) {
  if (!cond) {
    console.error(`private_key_jwt: ${what}`);
    process.exit(1);
  }
}

async function keygen(dir) {
  const { privateKey, publicKey } = await jose.generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const priv = { ...(await jose.exportJWK(privateKey)), kid: 'interop-1', alg: 'EdDSA' };
  const pub = { ...(await jose.exportJWK(publicKey)), kid: 'interop-1', alg: 'EdDSA', use: 'sig' };
  fs.writeFileSync(path.join(dir, 'private.json'), JSON.stringify(priv));
  fs.writeFileSync(path.join(dir, 'jwks.json'), JSON.stringify({ keys: [pub] }));
}

async function run(base, clientId, dir) {
  const priv = JSON.parse(fs.readFileSync(path.join(dir, 'private.json'), 'utf8'));
  const issuer = await Issuer.discover(base);
  assert(issuer.token_endpoint_auth_methods_supported.includes('private_key_jwt'), 'not in the metadata');
  const client = new issuer.Client(
    { client_id: clientId, token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_signing_alg: 'EdDSA' },
    { keys: [priv] },
  );
  const set = await client.grant({ grant_type: 'client_credentials' });
  assert(typeof set.access_token === 'string', 'no access token');
  const jwks = jose.createRemoteJWKSet(new URL(issuer.jwks_uri));
  const { payload } = await jose.jwtVerify(set.access_token, jwks, { issuer: issuer.issuer, audience: issuer.issuer });
  assert(payload.client_id === clientId, `client_id ${payload.client_id}`);
  const seen = await client.introspect(set.access_token);
  assert(seen.active === true && seen.client_id === clientId, `introspection ${JSON.stringify(seen)}`);
  console.log(`openid-client private_key_jwt: token for ${payload.client_id}, introspected active`);
}

const [cmd, ...args] = process.argv.slice(2);
(cmd === 'keygen' ? keygen(...args) : run(...args)).catch((e) => {
  console.error(e);
  process.exit(1);
});
