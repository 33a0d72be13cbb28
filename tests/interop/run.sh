#!/usr/bin/env bash
# Unmodified standard clients of other ecosystems against a running Roster:
# openid-client and jose (Node), PyJWT (Python), for EdDSA and ES256 keys;
# openid-client also with private_key_jwt (a key instead of a secret);
# openid-client also through the browser login (authorization code + PKCE);
# authlib's fetch_token for token exchange (RFC 8693), checked with PyJWT.
# Usage: tests/interop/run.sh [path/to/roster]   (default: target/debug/roster)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN="${1:-$ROOT/target/debug/roster}"
[ -x "$BIN" ] || { echo "$0: no roster binary at $BIN (build it first, or pass its path)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/roster-interop.XXXXXX)
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

cp "$HERE/package.json" "$HERE/package-lock.json" "$HERE"/*.cjs "$HERE"/*.mjs "$WORK/"
(cd "$WORK" && npm ci --silent --no-audit --no-fund >/dev/null)
# PyJWT in a virtual environment of its own, never in the system Python.
VENV="${INTEROP_VENV:-${TMPDIR:-/tmp}/roster-interop-venv}"
"$VENV/bin/python" -c 'import jwt, cryptography, authlib, requests' 2>/dev/null \
  || { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q "pyjwt[crypto]==2.10.1" "authlib==1.6.5" "requests==2.32.5"; }

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
for alg in EdDSA ES256; do
  export DATABASE_URL="sqlite://$WORK/$alg.db" ROSTER_SECRET_PEPPER="interop-pepper-interop-pepper-interop" \
         ROSTER_SIGNING_ALG="$alg" ROSTER_ADMIN_PASSWORD="interop-admin-password" RUST_LOG=warn
  "$BIN" migrate 2>/dev/null
  secret=$("$BIN" principal create-service my-interop-svc --scope api:read \
           | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])')
  "$BIN" principal create-service my-frontend --public --redirect-uri "http://localhost:5173/callback" >/dev/null
  mkdir -p "$WORK/keys-$alg"
  (cd "$WORK" && node private_key_jwt.cjs keygen "$WORK/keys-$alg")
  "$BIN" principal create-service my-keyed-svc --scope api:read --jwks-file "$WORK/keys-$alg/jwks.json" >/dev/null
  printf '%s' "interop-person-password" | "$BIN" principal create-human ada --password-stdin >/dev/null
  acting=$("$BIN" principal create-service my-acting-svc --exchange-audience my-next-svc \
           | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])')
  "$BIN" principal create-service my-next-svc >/dev/null
  "$BIN" serve --listen "127.0.0.1:$PORT" 2>"$WORK/serve-$alg.log" &
  PID=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
  base="http://127.0.0.1:$PORT"
  echo "-- $alg"
  (cd "$WORK" && node openid_client.cjs "$base" my-interop-svc "$secret")
  (cd "$WORK" && node private_key_jwt.cjs run "$base" my-keyed-svc "$WORK/keys-$alg")
  (cd "$WORK" && node openid_code_flow.cjs "$base" my-frontend "http://localhost:5173/callback" ada interop-person-password "$alg")
  token=$(curl -sf -u "my-interop-svc:$secret" -d grant_type=client_credentials "$base/oauth/token" \
          | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  (cd "$WORK" && node jose_verify.mjs "$base" "$token")
  "$VENV/bin/python" "$HERE/pyjwt_verify.py" "$base" "$token"
  "$VENV/bin/python" "$HERE/token_exchange.py" "$base" my-acting-svc "$acting" my-next-svc ada interop-person-password
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
done
echo "interop: ok"
