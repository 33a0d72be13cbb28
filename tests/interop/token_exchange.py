"""authlib + PyJWT (Python): token exchange (RFC 8693) with authlib's own
fetch_token, and the exchanged token verified offline against the JWKS."""
import json
import sys
import urllib.parse
import urllib.request

import jwt
from authlib.integrations.requests_client import OAuth2Session
from authlib.integrations.base_client.errors import OAuthError

GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"

base, service, secret, target, user, password = sys.argv[1:7]
meta = json.load(urllib.request.urlopen(f"{base}/.well-known/oauth-authorization-server"))
assert GRANT in meta["grant_types_supported"], meta["grant_types_supported"]

# The person's token, addressed to the service (the password grant, RFC 8707 resource).
form = urllib.parse.urlencode({"grant_type": "password", "username": user, "password": password,
                               "resource": service}).encode()
person = json.load(urllib.request.urlopen(urllib.request.Request(meta["token_endpoint"], data=form)))

# The service exchanges it, authenticating with client_secret_basic, through authlib.
session = OAuth2Session(service, secret, token_endpoint_auth_method="client_secret_basic")
answer = session.fetch_token(meta["token_endpoint"], grant_type=GRANT, subject_token=person["access_token"],
                             subject_token_type=ACCESS, audience=target)
assert answer["issued_token_type"] == ACCESS, answer
assert answer["token_type"] == "Bearer" and "refresh_token" not in answer, answer

token = answer["access_token"]
key = jwt.PyJWKClient(meta["jwks_uri"]).get_signing_key_from_jwt(token)
claims = jwt.decode(token, key.key, algorithms=["EdDSA", "ES256"], audience=target, issuer=meta["issuer"])
assert claims["name"] == user and claims["principal_kind"] == "human", claims
assert claims["client_id"] == service and claims["act"]["client_id"] == service, claims
assert claims["exp"] <= jwt.decode(person["access_token"], options={"verify_signature": False})["exp"], claims

# A target the service's policy does not name: authlib raises the RFC 6749 §5.2 error.
try:
    session.fetch_token(meta["token_endpoint"], grant_type=GRANT, subject_token=person["access_token"],
                        subject_token_type=ACCESS, audience="somewhere-else")
    raise SystemExit("an exchange the policy does not allow was granted")
except OAuthError as e:
    assert e.error == "unauthorized_client", (e.error, e.description)
print(f"authlib + PyJWT: {jwt.get_unverified_header(token)['alg']} token exchange verified: ok")
