#!/usr/bin/env bash
# Load-test Roster's token and introspection endpoints with wrk.
#
# With the shared peer harness beside the clone (../shared/peers, or PEERS_SRC:
# wrk scripts, oidc-provider and nginx baselines) its scripts drive the load, so
# that Roster is measured the same way as a well-known OAuth server. Without
# it, Roster's own script (benches/wrk/oauth.lua) drives it and Roster's
# figures are printed alone.
#
#   benches/token-bench.sh                 # SQLite, EdDSA, 16 and 64 connections
#   DATABASE_URL=postgres://root@127.0.0.1/roster_bench benches/token-bench.sh
#   ALG=ES256 CONNS="64" DURATION=15s benches/token-bench.sh
#
# Needs wrk (apt-get install wrk). Prints the harness's SUMMARY lines and a table.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PEERS_SRC="${PEERS_SRC:-$ROOT/../shared/peers}"
DURATION="${DURATION:-15s}"
CONNS="${CONNS:-16 64}"
ALG="${ALG:-EdDSA}"
PORT="${PORT:-18181}"

command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install wrk" >&2; exit 1; }
WORK=$(mktemp -d /tmp/roster-bench.XXXXXX)
if [ -d "$PEERS_SRC" ]; then
  cp -r "$PEERS_SRC" "$WORK/peers"
  PEERS="$WORK/peers"
else
  PEERS=""
  echo "note: no peer harness at $PEERS_SRC; measuring Roster alone with benches/wrk/oauth.lua." >&2
  echo "      To compare with oidc-provider and nginx, put the harness there or set PEERS_SRC." >&2
fi
cargo build --release -q
BIN="$ROOT/target/release/roster"

export DATABASE_URL="${DATABASE_URL:-sqlite://$WORK/roster.db}"
export ROSTER_SECRET_PEPPER="bench-pepper-bench-pepper-bench-pepper"
export ROSTER_SIGNING_ALG="$ALG" RUST_LOG=warn ROSTER_ADMIN_PASSWORD="bench-admin-password"
"$BIN" migrate 2>/dev/null
svc=$("$BIN" principal create-service "bench-$$" --scope api:read)
rs=$("$BIN" principal create-service "bench-rs-$$")
secret=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["client_secret"])' "$svc")
rs_secret=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["client_secret"])' "$rs")

"$BIN" serve --listen "127.0.0.1:$PORT" 2>"$WORK/serve.log" &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
echo "idle RSS: $(awk '/VmRSS/{print $2" "$3}' /proc/$PID/status)"

URL="http://127.0.0.1:$PORT"
results=()

# own_wrk PATH CLIENT SECRET BODY CONNS: Roster's own script; prints a SUMMARY line.
own_wrk() {
  local out
  BENCH_CLIENT_ID="$2" BENCH_SECRET="$3" BENCH_BODY="$4" \
    wrk -t2 -c"$5" -d3s -s "$ROOT/benches/wrk/oauth.lua" "$URL$1" >/dev/null
  out=$(BENCH_CLIENT_ID="$2" BENCH_SECRET="$3" BENCH_BODY="$4" \
    wrk -t2 -c"$5" -d"$DURATION" -s "$ROOT/benches/wrk/oauth.lua" "$URL$1" | grep '^RESULT')
  echo "SUMMARY ${out#RESULT } server_cpu_pct=- server_hwm_kb=$(awk '/VmHWM/{print $2}' /proc/$PID/status)"
}
for c in $CONNS; do
  for auth in basic post; do
    if [ -n "$PEERS" ]; then
      out=$(AUTH=$auth SERVER_PID=$PID "$PEERS/bench-token.sh" "$URL/oauth/token" "bench-$$" "$secret" "$DURATION" "$c")
    elif [ "$auth" = basic ]; then
      out=$(own_wrk /oauth/token "bench-$$" "$secret" grant_type=client_credentials "$c")
    else
      continue
    fi
    echo "$out" | grep -E '^(preflight|SUMMARY)'
    results+=("token $ALG $auth|$c|$(echo "$out" | grep '^SUMMARY')")
  done
done
token=$(curl -s -u "bench-$$:$secret" -d grant_type=client_credentials "$URL/oauth/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
for c in $CONNS; do
  if [ -n "$PEERS" ]; then
    out=$(SERVER_PID=$PID "$PEERS/bench-introspect.sh" "$URL/oauth/introspect" "bench-rs-$$" "$rs_secret" "$token" "$DURATION" "$c")
  else
    out=$(own_wrk /oauth/introspect "bench-rs-$$" "$rs_secret" "token=$token" "$c")
  fi
  echo "$out" | grep -E '^SUMMARY'
  results+=("introspect (JWT)|$c|$(echo "$out" | grep '^SUMMARY')")
done

echo
echo "| configuration | conns | req/s | p50 ms | p99 ms | non-2xx | server CPU % | peak RSS MiB |"
echo "|---|---|---|---|---|---|---|---|"
for r in "${results[@]}"; do
  IFS='|' read -r name c summary <<<"$r"
  get() { echo "$summary" | tr ' ' '\n' | awk -F= -v k="$1" '$1==k{print $2}'; }
  printf '| Roster %s (%s) | %s | %s | %s | %s | %s | %s | %s |\n' "$name" "${DATABASE_URL%%:*}" "$c" "$(get rps)" "$(get p50_ms)" "$(get p99_ms)" \
    "$(get non2xx)" "$(get server_cpu_pct)" "$(( $(get server_hwm_kb) / 1024 ))"
done
[ -n "$PEERS" ] || echo "(Roster alone: no peer harness, so no oidc-provider or nginx figures to compare with.)"
