// openid-client (Node): discovery, client_credentials with client_secret_basic
// (it sends '-' as %2D) and client_secret_post, introspection and revocation.
const { Issuer } = require('openid-client');
const assert = require('node:assert/strict');

(async () => {
  const [base, clientId, secret] = process.argv.slice(2);
  const issuer = await Issuer.discover(base);
  assert.equal(issuer.metadata.issuer, base);
  const basic = new issuer.Client({ client_id: clientId, client_secret: secret, token_endpoint_auth_method: 'client_secret_basic' });
  const set = await basic.grant({ grant_type: 'client_credentials', scope: 'api:read' });
  assert.equal(set.token_type, 'Bearer');
  assert.equal(set.scope, 'api:read');
  const info = await basic.introspect(set.access_token);
  assert.equal(info.active, true);
  assert.equal(info.client_id, clientId);
  await basic.revoke(set.access_token);
  assert.equal((await basic.introspect(set.access_token)).active, false);
  const post = new issuer.Client({ client_id: clientId, client_secret: secret, token_endpoint_auth_method: 'client_secret_post' });
  assert.equal((await post.grant({ grant_type: 'client_credentials' })).token_type, 'Bearer');
  console.log('openid-client: discovery, basic and post grants, introspection, revocation: ok');
})().catch((e) => { console.error('openid-client FAILED:', e); process.exit(1); });
