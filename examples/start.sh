# Start Roster on a fresh database in a scratch directory, and wait until it is ready.
# Every other example sources this first; in one shell the server starts only once.
case $- in *i*) ;; *) set -euo pipefail ;; esac   # a script stops at its first failure; your own shell stays open
give_up() { echo "$1" >&2; case $- in *i*) kill -INT $$ ;; *) exit 1 ;; esac; }   # stop the walkthrough here
if [ -z "${ROSTER_PID:-}" ] || ! kill -0 "$ROSTER_PID" 2>/dev/null; then
  command -v roster >/dev/null || give_up "roster is not on the PATH: run cargo install --locked --path . first"
  export ROSTER_LISTEN="${ROSTER_LISTEN:-127.0.0.1:8080}"
  R="http://$ROSTER_LISTEN"
  if curl -s -o /dev/null --max-time 2 "$R/"; [ $? != 7 ]; then   # 7: nothing listens there
    give_up "$ROSTER_LISTEN is already taken: stop what serves there, or set ROSTER_LISTEN=127.0.0.1:<port>"
  fi
  DEMO=$(mktemp -d)                                      # the database, its key file and the log
  export DATABASE_URL="sqlite://$DEMO/roster.db"         # one database for the server and every roster command
  ADMIN_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')   # the first admin's password: yours, not in any file
  ROSTER_ADMIN_PASSWORD="$ADMIN_PASSWORD" roster serve 2> "$DEMO/serve.log" &
  ROSTER_PID=$!
  trap 'kill "$ROSTER_PID" 2>/dev/null; rm -rf "$DEMO"' EXIT     # stop it when this shell exits
  curl -fs --retry 30 --retry-connrefused --retry-delay 1 "$R/readyz" && echo \
    || { cat "$DEMO/serve.log" >&2; give_up "roster serve did not become ready: its log is above"; }   # {"status":"ready",...}
fi
field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }   # one field of a JSON answer
