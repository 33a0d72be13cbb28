#!/usr/bin/env bash
# Hostile input, automated: schemathesis generates requests from
# openapi/openapi.yaml against a live Roster, once with an admin token and
# once with a service token, and fails on any 5xx, any response that breaks
# the schema, or a panic in the server's log.
# Usage: tests/schemathesis/run.sh [path/to/roster]   (default: target/debug/roster)
# ST_EXAMPLES (default 25) sets the examples per operation; ST_SEED the seed.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN="${1:-$ROOT/target/debug/roster}"
[ -x "$BIN" ] || { echo "$0: no roster binary at $BIN (build it first, or pass its path)" >&2; exit 1; }
EXAMPLES="${ST_EXAMPLES:-25}"
SEED="${ST_SEED:-1}"
VENV="${ST_VENV:-${TMPDIR:-/tmp}/roster-schemathesis-venv}"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/roster-st.XXXXXX")
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

# A virtual environment of its own: nothing goes into the system Python.
if [ ! -x "$VENV/bin/schemathesis" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "schemathesis==4.32.5"
fi

export DATABASE_URL="sqlite://$WORK/roster.db" ROSTER_SECRET_PEPPER="schemathesis-pepper-schemathesis-0001" \
       ROSTER_ADMIN_PASSWORD="schemathesis-admin-pw" RUST_LOG=warn
"$BIN" migrate 2>/dev/null
secret=$("$BIN" principal create-service fuzz-svc --scope registry:read \
         | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])')
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" serve --listen "127.0.0.1:$PORT" 2>"$WORK/serve.log" &
PID=$!
R="http://127.0.0.1:$PORT"
for _ in $(seq 1 100); do curl -sf "$R/readyz" >/dev/null && break; sleep 0.1; done
token() { python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'; }
admin=$(curl -sf -d grant_type=password -d username=admin -d password="$ROSTER_ADMIN_PASSWORD" "$R/oauth/token" | token)
service=$(curl -sf -u "fuzz-svc:$secret" -d grant_type=client_credentials "$R/oauth/token" | token)

status=0
for who in admin service; do
  bearer=$admin; [ "$who" = service ] && bearer=$service
  echo "-- schemathesis as $who ($EXAMPLES examples per operation)"
  # listServices, getService, getCategory, modules and revocationFeed are
  # blocking queries (with an index they wait up to 30 s by design); the
  # integration tests send them garbage instead.
  "$VENV/bin/schemathesis" run "$ROOT/openapi/openapi.yaml" -u "$R" \
      -H "Authorization: Bearer $bearer" \
      -c not_a_server_error,response_schema_conformance \
      -n "$EXAMPLES" --seed "$SEED" --exclude-operation-id listServices --exclude-operation-id revocationFeed \
      --exclude-operation-id getService --exclude-operation-id getCategory --exclude-operation-id modules \
      --no-color > "$WORK/st-$who.log" 2>&1 || status=1
  grep -E "^(Failures|Errors|Test cases|=+ .* in )" -A3 "$WORK/st-$who.log" || true
  [ $status -eq 0 ] || { cat "$WORK/st-$who.log"; break; }
done
if grep -qi "panicked" "$WORK/serve.log"; then
  echo "schemathesis: the server panicked"; grep -i -A5 "panicked" "$WORK/serve.log"; status=1
fi
[ $status -eq 0 ] && echo "schemathesis: ok"
exit $status
