// jose (Node): verify an access token offline against the discovered JWKS.
import { createRemoteJWKSet, jwtVerify } from 'jose';

const [base, token] = process.argv.slice(2);
const meta = await (await fetch(`${base}/.well-known/oauth-authorization-server`)).json();
const jwks = createRemoteJWKSet(new URL(meta.jwks_uri));
const { protectedHeader } = await jwtVerify(token, jwks, { issuer: meta.issuer, audience: meta.issuer, typ: 'at+jwt' });
console.log(`jose: ${protectedHeader.alg} token verified against the JWKS: ok`);
