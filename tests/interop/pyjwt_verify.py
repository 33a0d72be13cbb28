"""PyJWT (Python): verify an access token offline against the discovered JWKS."""
import json
import sys
import urllib.request

import jwt

base, token = sys.argv[1], sys.argv[2]
meta = json.load(urllib.request.urlopen(f"{base}/.well-known/openid-configuration"))
key = jwt.PyJWKClient(meta["jwks_uri"]).get_signing_key_from_jwt(token)
header = jwt.get_unverified_header(token)
assert header["typ"] == "at+jwt", header
claims = jwt.decode(token, key.key, algorithms=["EdDSA", "ES256"], audience=meta["issuer"], issuer=meta["issuer"])
assert claims["principal_kind"] == "service", claims
print(f"PyJWT: {header['alg']} token verified against the JWKS: ok")
