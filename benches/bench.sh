#!/usr/bin/env bash
# Roster's performance benchmark: one command, one table.
#
#   benches/bench.sh            # SQLite, then PostgreSQL; Roster's figures
#   benches/bench.sh --peer     # also oidc-provider and nginx from the shared peer harness, with ratios
#   benches/bench.sh --smoke    # 1 s per scenario, SQLite only: checks that it runs with zero errors (CI)
#
# Env: DURATION (10s), CONNS (64), BACKENDS ("sqlite postgres"), ROSTER_BIN (a binary to measure instead of a fresh build),
#      PG_ADMIN_URL (postgres://postgres@127.0.0.1:5432/postgres: a fresh database is made there),
#      PEERS_SRC (../shared/peers), SERVICES (50) and PAGES (4) of the module list, PRINCIPALS (100000),
#      WATCHERS (500) long polls for the blocking-query figure, MIXED_CONNS (32) clients of the mixed write load.
# Needs wrk (apt-get install wrk), curl, openssl and python3; --peer also needs node and nginx-light.
# wrk shares the machine's cores with the server: every figure is what is left after it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PEER=0 SMOKE=0
for arg in "$@"; do
  case "$arg" in
    --peer) PEER=1 ;;
    --smoke) SMOKE=1 ;;
    *) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done
DURATION="${DURATION:-10s}" CONNS="${CONNS:-64}" BACKENDS="${BACKENDS:-sqlite postgres}"
SERVICES="${SERVICES:-50}" PAGES="${PAGES:-4}" PRINCIPALS="${PRINCIPALS:-100000}" WATCHERS="${WATCHERS:-500}" WARMUP=2
MIXED_CONNS="${MIXED_CONNS:-32}"
if [ "$SMOKE" = 1 ]; then DURATION=1s CONNS=8 BACKENDS=sqlite SERVICES=3 PAGES=2 PRINCIPALS=1000 WATCHERS=12 WARMUP=0 MIXED_CONNS=8; fi
PG_ADMIN_URL="${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
PEERS_SRC="${PEERS_SRC:-$ROOT/../shared/peers}"
PORT="${PORT:-18181}"
URL="http://127.0.0.1:$PORT"

command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install wrk" >&2; exit 1; }
if [ "$PEER" = 1 ]; then
  [ -d "$PEERS_SRC" ] || { echo "--peer: no peer harness at $PEERS_SRC (set PEERS_SRC)" >&2; exit 1; }
  command -v node >/dev/null || { echo "--peer needs Node.js (apt-get install nodejs npm)" >&2; exit 1; }
  command -v nginx >/dev/null || { echo "--peer needs nginx (apt-get install nginx-light)" >&2; exit 1; }
fi
WORK=$(mktemp -d /tmp/roster-bench.XXXXXX)
PID="" DB_NAME=""
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  [ -n "$DB_NAME" ] && psql "$PG_ADMIN_URL" -qAtc "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null 2>&1
  if [ -d "$WORK/peers" ]; then
    "$WORK/peers/oidc-provider/stop.sh" >/dev/null 2>&1 || true
    PORT=3199 "$WORK/peers/baseline/stop-nginx.sh" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
  return 0
}
trap cleanup EXIT

BIN="${ROSTER_BIN:-}"   # another build to measure (e.g. an older commit's), instead of this tree's
if [ -z "$BIN" ]; then
  echo "building (release)..." >&2
  cargo build --release -q
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/roster"
fi
ARGON=$(cargo bench -q --bench argon2 2>/dev/null)
ARGON_MS=$(sed -n 's/^argon2id_verify_ms=//p' <<<"$ARGON")
ARGON_PARALLEL_RATE=$(sed -n 's/^argon2id_parallel_per_s=//p' <<<"$ARGON")
CORES=$(nproc)

# private_key_jwt: one Ed25519 key for the bench-jwt service, and the tool that signs its assertions.
cargo build --release -q -p roster-client --example assertions
ASSERTIONS="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/assertions"
openssl genpkey -algorithm ed25519 -out "$WORK/bench-jwt.pem" 2>/dev/null
"$ASSERTIONS" --key "$WORK/bench-jwt.pem" --jwks > "$WORK/bench-jwt.jwks"
export BENCH_JWKS="$WORK/bench-jwt.jwks"
N_ASSERTIONS=200000
if [ "$SMOKE" = 1 ]; then N_ASSERTIONS=5000; fi
# Fresh assertions into FILE: two signers at once (one per core), each to its own file.
assertions() {
  "$ASSERTIONS" --key "$WORK/bench-jwt.pem" --client bench-jwt --aud "$URL/oauth/token" --count "$2" > "$1.a" &
  local other=$!
  "$ASSERTIONS" --key "$WORK/bench-jwt.pem" --client bench-jwt --aud "$URL/oauth/token" --count "$2" > "$1.b"
  wait "$other"
  cat "$1.a" "$1.b" > "$1"; rm -f "$1.a" "$1.b"
}

RESULTS="$WORK/results"
: > "$RESULTS"
# wrk_run NAME BACKEND SCRIPT URL CONNS [ENV=VALUE...]: warm up, measure, record one row.
wrk_run() {
  local name="$1" backend="$2" script="$3" url="$4" conns="$5"; shift 5
  [ "$WARMUP" = 0 ] || env "$@" wrk -t2 -c"$conns" -d"${WARMUP}s" -s "$script" "$url" >/dev/null
  local out; out=$(env "$@" wrk -t2 -c"$conns" -d"$DURATION" -s "$script" "$url" | sed -n 's/^RESULT //p')
  local rss=-
  [ -n "$PID" ] && rss=$(( $(awk '/VmHWM/{print $2}' "/proc/$PID/status") / 1024 ))
  echo "$name|$backend|$conns|$out|$rss" >> "$RESULTS"
  echo "  $name ($backend, $conns conns): $out peak_rss_mib=$rss" >&2
}
get() { tr ' ' '\n' <<<"$2" | awk -F= -v k="$1" '$1==k{print $2}'; }

for backend in $BACKENDS; do
  echo "== $backend" >&2
  case "$backend" in
    sqlite) export DATABASE_URL="sqlite://$WORK/roster.db" ;;
    postgres)
      DB_NAME="roster_bench_$$"
      psql "$PG_ADMIN_URL" -qAtc "CREATE DATABASE $DB_NAME" >/dev/null
      export DATABASE_URL="${PG_ADMIN_URL%/*}/$DB_NAME" ;;
    *) echo "unknown backend $backend" >&2; exit 2 ;;
  esac
  export ROSTER_SECRET_PEPPER="bench-pepper-bench-pepper-bench-pepper" RUST_LOG=warn
  ROSTER_ADMIN_PASSWORD="bench-admin-password" "$BIN" serve --listen "127.0.0.1:$PORT" 2> "$WORK/serve-$backend.log" &
  PID=$!
  curl -fs --retry 30 --retry-connrefused --retry-delay 1 -o /dev/null "$URL/readyz"
  eval "$(python3 "$ROOT/benches/seed.py" "$URL" bench-admin-password "$SERVICES" "$PAGES")"
  # A fresh process for the scenarios, so that each peak RSS is what serving
  # took (seeding hashed passwords); the scenarios run in order of memory use.
  kill "$PID"; wait "$PID" 2>/dev/null || true
  "$BIN" serve --listen "127.0.0.1:$PORT" 2>> "$WORK/serve-$backend.log" &
  PID=$!
  curl -fs --retry 30 --retry-connrefused --retry-delay 1 -o /dev/null "$URL/readyz"
  TOKEN=$(curl -fsS -u "bench-svc:$SECRET" -d grant_type=client_credentials "$URL/oauth/token" \
          | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  OAUTH="$ROOT/benches/wrk/oauth.lua" GET="$ROOT/benches/wrk/get.lua"
  creds=(BENCH_CLIENT_ID=bench-svc "BENCH_SECRET=$SECRET")
  wrk_run "client_credentials basic" "$backend" "$OAUTH" "$URL/oauth/token" "$CONNS" "${creds[@]}" BENCH_BODY=grant_type=client_credentials
  wrk_run "client_credentials post" "$backend" "$OAUTH" "$URL/oauth/token" "$CONNS" "${creds[@]}" BENCH_AUTH=post BENCH_BODY=grant_type=client_credentials
  # private_key_jwt: every request a new assertion whose jti is spent in the database.
  # Signed just before (they live a minute): a warm-up set, then the measured set.
  assertions "$WORK/warm.txt" $(( N_ASSERTIONS / 10 ))
  assertions "$WORK/measured.txt" "$N_ASSERTIONS"
  [ "$WARMUP" = 0 ] || BENCH_ASSERTIONS="$WORK/warm.txt" wrk -t2 -c"$CONNS" -d"${WARMUP}s" -s "$ROOT/benches/wrk/assertion.lua" "$URL/oauth/token" >/dev/null
  WARMUP=0 wrk_run "client_credentials private_key_jwt" "$backend" "$ROOT/benches/wrk/assertion.lua" "$URL/oauth/token" "$CONNS" \
    "BENCH_ASSERTIONS=$WORK/measured.txt"
  # Token exchange (RFC 8693): bench-act trades bench-user's token (addressed to it) for one to bench-rs.
  SUBJECT=$(curl -fsS -d grant_type=password -d username=bench-user -d password=bench-user-password -d resource=bench-act \
            "$URL/oauth/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  wrk_run "token exchange" "$backend" "$OAUTH" "$URL/oauth/token" "$CONNS" BENCH_CLIENT_ID=bench-act "BENCH_SECRET=$ACT_SECRET" \
    "BENCH_BODY=grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token&audience=bench-rs&subject_token=$SUBJECT"
  wrk_run "introspect JWT" "$backend" "$OAUTH" "$URL/oauth/introspect" "$CONNS" BENCH_CLIENT_ID=bench-rs "BENCH_SECRET=$RS_SECRET" "BENCH_BODY=token=$TOKEN"
  wrk_run "modules ($((SERVICES * PAGES)) pages)" "$backend" "$GET" "$URL/api/v1/modules" "$CONNS"
  wrk_run "password grant" "$backend" "$OAUTH" "$URL/oauth/token" $((CORES * 4)) BENCH_AUTH=none \
    BENCH_BODY="grant_type=password&username=bench-user&password=bench-user-password"
  # A flood of wrong passwords beside client_credentials (the flood's answers are 400s, then 429s).
  BENCH_AUTH=none BENCH_BODY="grant_type=password&username=bench-user&password=wrong" \
    wrk -t1 -c16 -d"$(( ${DURATION%s} + WARMUP ))s" -s "$OAUTH" "$URL/oauth/token" > "$WORK/flood.txt" &
  FLOOD=$!
  wrk_run "client_credentials under a password flood" "$backend" "$OAUTH" "$URL/oauth/token" "$CONNS" "${creds[@]}" BENCH_BODY=grant_type=client_credentials
  wait "$FLOOD"
  echo "  the flood: $(sed -n 's/^RESULT //p' "$WORK/flood.txt") (all refused, as they should be)" >&2
  # Many principals: the same token scenario with PRINCIPALS more people in the table.
  python3 - "$DATABASE_URL" "$PRINCIPALS" <<'PY'
import sys, uuid, datetime, subprocess
url, n = sys.argv[1], int(sys.argv[2])
now = datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M:%S")
if url.startswith("sqlite://"):
    import sqlite3
    db = sqlite3.connect(url[len("sqlite://"):], timeout=30)
    db.executemany("INSERT INTO principals (id, kind, name, status, created_at, updated_at) VALUES (?, 'human', ?, 'active', ?, ?)",
                   ((str(uuid.uuid4()), f"bulk-{i}", now, now) for i in range(n)))
    db.commit()
else:
    sql = (f"INSERT INTO principals (id, kind, name, status, created_at, updated_at) "
           f"SELECT gen_random_uuid()::text, 'human', 'bulk-' || i, 'active', '{now}', '{now}' FROM generate_series(1, {n}) i")
    subprocess.run(["psql", url, "-qAtc", sql], check=True, stdout=subprocess.DEVNULL)
PY
  wrk_run "client_credentials basic, +$PRINCIPALS principals" "$backend" "$OAUTH" "$URL/oauth/token" "$CONNS" "${creds[@]}" BENCH_BODY=grant_type=client_credentials
  # Mixed writes: creates, refreshes, revokes, wrong secrets and client credentials at once (p50/p99 per kind).
  { echo "$backend, $MIXED_CONNS clients, ${DURATION}:"; python3 "$ROOT/benches/mixed.py" "$URL" bench-admin-password "$MIXED_CONNS" "${DURATION%s}" | sed 's/^/  /'; } >> "$WORK/mixed.txt"
  # Precise blocking queries: who is answered by one change, and by heartbeats that change nothing.
  # Its own server, with metrics: the long-poll gauge tells when every watcher is waiting
  # (the scenarios above run without the metrics recorder).
  kill "$PID"; wait "$PID" 2>/dev/null || true
  MPORT=$((PORT + 1))
  # Every watcher comes from 127.0.0.1, one peer to the per-peer connection cap (256 by default).
  "$BIN" serve --listen "127.0.0.1:$PORT" --metrics-listen "127.0.0.1:$MPORT" \
    --max-connections-per-peer $((WATCHERS + 64)) 2>> "$WORK/serve-$backend.log" &
  PID=$!
  curl -fs --retry 30 --retry-connrefused --retry-delay 1 -o /dev/null "$URL/readyz"
  echo "$backend: $(python3 "$ROOT/benches/watch.py" "$URL" bench-admin-password "$SERVICES" "$WATCHERS" "http://127.0.0.1:$MPORT/metrics")" >> "$WORK/watch.txt"
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
  if [ -n "$DB_NAME" ]; then psql "$PG_ADMIN_URL" -qAtc "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null; DB_NAME=""; fi
done

if [ "$PEER" = 1 ]; then
  echo "== peers" >&2
  cp -r "$PEERS_SRC" "$WORK/peers"
  P="$WORK/peers"
  (cd "$P/oidc-provider" && ./setup.sh >/dev/null 2>&1)
  AT_ALG=ES256 "$P/oidc-provider/start.sh" >/dev/null
  PID=$(cat "$P/oidc-provider/oidc-provider.pid")
  wrk_run "oidc-provider client_credentials ES256" peer "$OAUTH" "http://127.0.0.1:3100/token" "$CONNS" \
    BENCH_CLIENT_ID=bench-svc BENCH_SECRET=bench-secret-0123456789abcdef BENCH_BODY=grant_type=client_credentials
  OPAQUE=$(curl -fsS -u bench-svc:bench-secret-0123456789abcdef -d grant_type=client_credentials -d resource=urn:bench:opaque \
           http://127.0.0.1:3100/token | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  wrk_run "oidc-provider introspect opaque" peer "$OAUTH" "http://127.0.0.1:3100/token/introspection" "$CONNS" \
    BENCH_CLIENT_ID=bench-svc BENCH_SECRET=bench-secret-0123456789abcdef "BENCH_BODY=token=$OPAQUE"
  "$P/oidc-provider/stop.sh" >/dev/null; PID=""
  PORT=3199 "$P/baseline/start-nginx.sh" >/dev/null
  PID=$(pgrep -f "nginx: worker process" | head -n1 || true)
  wrk_run "nginx static (ceiling)" peer "$GET" "http://127.0.0.1:3199/" "$CONNS"
  PORT=3199 "$P/baseline/stop-nginx.sh" >/dev/null; PID=""
fi

# The table, then the ratios the targets are stated in.
row() { awk -F'|' -v n="$1" -v b="$2" '$1==n && $2==b {print $4}' "$RESULTS"; }
rps() { get rps "$(row "$1" "$2")"; }
ratio() { python3 -c 'import sys; a, b = sys.argv[1:3]; print(f"{float(a)/float(b):.2f}" if a and b and float(b) else "-")' "${1:-}" "${2:-}"; }
echo
echo "$(date -u +%Y-%m-%d), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), wrk -t2, ${WARMUP} s warm-up, $DURATION measured"
echo
echo "| scenario | backend | conns | req/s | p50 ms | p99 ms | non-2xx | peak RSS MiB |"
echo "|---|---|---|---|---|---|---|---|"
errors=0
while IFS='|' read -r name backend conns result rss; do
  echo "| $name | $backend | $conns | $(get rps "$result") | $(get p50_ms "$result") | $(get p99_ms "$result") | $(get non2xx "$result") | $rss |"
  errors=$(( errors + $(get non2xx "$result") ))
done < "$RESULTS"
echo
echo "argon2 bound of the password grant: $CORES cores / ${ARGON_MS} ms = $(python3 -c "print(round($CORES * 1000 / $ARGON_MS))") logins/s;" \
     "$CORES verifications in parallel (no server) manage $ARGON_PARALLEL_RATE/s"
for backend in $BACKENDS; do
  echo "$backend: password grant / argon2 bound = $(ratio "$(rps "password grant" "$backend")" "$(python3 -c "print($CORES * 1000 / $ARGON_MS)")")" \
       "(/ the parallel rate: $(ratio "$(rps "password grant" "$backend")" "$ARGON_PARALLEL_RATE"))," \
       "private_key_jwt / secret client_credentials = $(ratio "$(rps "client_credentials private_key_jwt" "$backend")" "$(rps "client_credentials basic" "$backend")")," \
       "token exchange / secret client_credentials = $(ratio "$(rps "token exchange" "$backend")" "$(rps "client_credentials basic" "$backend")")," \
       "client_credentials under the flood / alone = $(ratio "$(rps "client_credentials under a password flood" "$backend")" "$(rps "client_credentials basic" "$backend")")," \
       "with +$PRINCIPALS principals / without = $(ratio "$(rps "client_credentials basic, +$PRINCIPALS principals" "$backend")" "$(rps "client_credentials basic" "$backend")")"
  if [ "$PEER" = 1 ]; then
    echo "$backend: client_credentials / oidc-provider ES256 = $(ratio "$(rps "client_credentials basic" "$backend")" "$(rps "oidc-provider client_credentials ES256" peer)")," \
         "introspection / oidc-provider opaque = $(ratio "$(rps "introspect JWT" "$backend")" "$(rps "oidc-provider introspect opaque" peer)")," \
         "modules / nginx = $(ratio "$(rps "modules ($((SERVICES * PAGES)) pages)" "$backend")" "$(rps "nginx static (ceiling)" peer)")"
  fi
done
cat "$WORK/watch.txt"
echo "mixed write load (benches/mixed.py; client-side figures, Python threads included):"
cat "$WORK/mixed.txt"
mixed_5xx=$(sed -n 's/^ *5xx=//p' "$WORK/mixed.txt" | awk '{ s += $1 } END { print s + 0 }')
[ "${mixed_5xx:-0}" -eq 0 ] || { echo "5xx answers in the mixed write load: $mixed_5xx" >&2; errors=$(( errors + mixed_5xx )); }
unseen=$(sed -n 's/^ *unseen=\([0-9]*\).*/\1/p' "$WORK/mixed.txt" | awk '{ s += $1 } END { print s + 0 }')
[ "${unseen:-0}" -eq 0 ] || { echo "acknowledged revocations the feed's follower never saw: $unseen" >&2; errors=$(( errors + unseen )); }
# roster-client's verification cost, without and with the revocation feed (its own Roster, SQLite).
cargo build --release -q -p roster-client --example verify_bench
VERIFY_N=200000 VERIFY_REVOKED=500
if [ "$SMOKE" = 1 ]; then VERIFY_N=2000 VERIFY_REVOKED=20; fi
ROSTER_BIN="$BIN" "${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/verify_bench" "$VERIFY_N" "$VERIFY_REVOKED"
# Connections an attacker holds (benches/slowloris.py): what an honest client sees, fds and RSS.
echo "connection-holding attack (benches/slowloris.py, SQLite):"
SLOW_ARGS=()
if [ "$SMOKE" = 1 ]; then SLOW_ARGS=(--smoke); fi
if ! python3 "$ROOT/benches/slowloris.py" --bin "$BIN" "${SLOW_ARGS[@]}" | sed 's/^/  /'; then
  echo "a probe failed during the connection-holding attack" >&2; errors=$(( errors + 1 ))
fi
[ "$PEER" = 1 ] || echo "(Roster alone: run with --peer for oidc-provider and nginx in the same run, and the ratios to them.)"
if [ "$errors" -ne 0 ]; then echo "non-2xx answers in the scenarios above: $errors" >&2; exit 1; fi
