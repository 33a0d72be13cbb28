# Start Roster on a fresh database in a scratch directory, and wait until it is ready.
# Every other example sources this first; in one shell the server starts only once.
if [ -z "${ROSTER_PID:-}" ] || ! kill -0 "$ROSTER_PID" 2>/dev/null; then
  command -v roster >/dev/null || { echo "roster is not on the PATH: run cargo install --path . first" >&2; return 1; }
  DEMO=$(mktemp -d)                                      # the database, its key file and the log
  export DATABASE_URL="sqlite://$DEMO/roster.db"         # one database for the server and every roster command
  export ROSTER_LISTEN="${ROSTER_LISTEN:-127.0.0.1:8080}"
  R="http://$ROSTER_LISTEN"
  ADMIN_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')   # the first admin's password: yours, not in any file
  ROSTER_ADMIN_PASSWORD="$ADMIN_PASSWORD" roster serve 2> "$DEMO/serve.log" &
  ROSTER_PID=$!
  trap 'kill "$ROSTER_PID" 2>/dev/null; rm -rf "$DEMO"' EXIT     # stop it when this shell exits
  curl -fs --retry 30 --retry-connrefused --retry-delay 1 "$R/readyz"; echo    # {"status":"ready",...}
  kill -0 "$ROSTER_PID" || { cat "$DEMO/serve.log"; return 1; }  # e.g. the port was taken
fi
field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }   # one field of a JSON answer
