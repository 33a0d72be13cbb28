# Services without secrets: one logs in with its own key (private_key_jwt), one with its platform's token.
. examples/start.sh
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }      # base64url, no padding
jwks() {   # the public half of an Ed25519 key, as a JWK Set
  echo "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"use\":\"sig\",\"kid\":\"$2\",\"x\":\"$(openssl pkey -in "$1" -pubout -outform DER | tail -c 32 | b64url)\"}]}"
}
sign() {   # a JWT of these claims, signed with EdDSA by key $1 named $2
  local signed; signed="$(printf '{"alg":"EdDSA","kid":"%s"}' "$2" | b64url).$(printf '%s' "$3" | b64url)"
  printf '%s' "$signed" > "$DEMO/signed"    # Ed25519 signs the whole message at once, from a file
  printf '%s.%s' "$signed" "$(openssl pkeyutl -sign -rawin -inkey "$1" -in "$DEMO/signed" | b64url)"
}
ASSERTION_TYPE=urn:ietf:params:oauth:client-assertion-type:jwt-bearer

# invoicer's key pair: the private half stays with invoicer, Roster gets the public half
openssl genpkey -algorithm ed25519 -out "$DEMO/invoicer.pem"
jwks "$DEMO/invoicer.pem" invoicer-1 > "$DEMO/invoicer.jwks.json"
roster principal create-service invoicer --scope invoices:read --jwks-file "$DEMO/invoicer.jwks.json" | field token_endpoint_auth_method

# invoicer signs an assertion: iss = sub = its name, aud = the token endpoint, a fresh jti, a minute to live
NOW=$(date +%s)
ASSERTION=$(sign "$DEMO/invoicer.pem" invoicer-1 "{\"iss\":\"invoicer\",\"sub\":\"invoicer\",\"aud\":\"$R/oauth/token\",\"iat\":$NOW,\"exp\":$((NOW + 60)),\"jti\":\"$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')\"}")
curl -fsS -d grant_type=client_credentials -d client_assertion_type=$ASSERTION_TYPE -d "client_assertion=$ASSERTION" "$R/oauth/token" | field scope
curl -sS -d grant_type=client_credentials -d client_assertion_type=$ASSERTION_TYPE -d "client_assertion=$ASSERTION" "$R/oauth/token"; echo   # the same one again: refused

# a cluster whose service-account tokens Roster trusts (a key of our own plays the cluster here)
openssl genpkey -algorithm ed25519 -out "$DEMO/cluster.pem"
ADMIN=$(curl -fsS -d grant_type=password -d username=admin --data-urlencode "password=$ADMIN_PASSWORD" "$R/oauth/token" | field access_token)
curl -fsS -H "Authorization: Bearer $ADMIN" -H 'content-type: application/json' "$R/api/v1/federation/issuers" \
  -d "{\"issuer\":\"https://kubernetes.default.svc\",\"audience\":\"roster\",\"jwks\":$(jwks "$DEMO/cluster.pem" cluster-1)}" | field issuer
# payroll is whoever runs as the service account payroll/api: no key, no secret
curl -fsS -H "Authorization: Bearer $ADMIN" -H 'content-type: application/json' "$R/api/v1/principals" \
  -d '{"kind":"service","name":"payroll","scopes":["invoices:write"],"token_endpoint_auth_method":"private_key_jwt",
       "federated_subjects":[{"issuer":"https://kubernetes.default.svc","subject":"system:serviceaccount:payroll:api"}]}' | field federated_subjects

# the pod's projected token (the kubelet writes it to a file and rotates it), sent as the client assertion
POD_TOKEN=$(sign "$DEMO/cluster.pem" cluster-1 "{\"iss\":\"https://kubernetes.default.svc\",\"sub\":\"system:serviceaccount:payroll:api\",\"aud\":[\"roster\"],\"iat\":$NOW,\"exp\":$((NOW + 3600))}")
TOKEN=$(curl -fsS -d grant_type=client_credentials -d client_assertion_type=$ASSERTION_TYPE -d "client_assertion=$POD_TOKEN" "$R/oauth/token" | field access_token)
curl -fsS -H "Authorization: Bearer $TOKEN" "$R/api/v1/me" | field name
