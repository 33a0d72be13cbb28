#!/usr/bin/env bash
# The browser login and the admin console in a real browser: headless Chromium
# through chromedriver (Selenium, in a virtual environment of its own), against
# a running Roster and the example frontend (examples/frontend) served on
# another origin.
# Usage: tests/browser/run.sh [path/to/roster] [screenshot.png]
# CONSOLE_SHOTS=DIR keeps the console's screenshots there (the README's come
# from CONSOLE_SHOTS=tests/browser/screenshots).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN="${1:-$ROOT/target/debug/roster}"
[ -x "$BIN" ] || { echo "$0: no roster binary at $BIN (build it first, or pass its path)" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/roster-browser.XXXXXX")
SHOT="${2:-$WORK/login-page.png}"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

command -v chromedriver >/dev/null 2>&1 && [ -x /usr/bin/chromium ] || {
  echo "browser test: needs chromium and chromedriver (apt-get install chromium chromium-driver)" >&2; exit 1; }
VENV="${BROWSER_VENV:-${TMPDIR:-/tmp}/roster-browser-venv}"
"$VENV/bin/python" -c 'import selenium' 2>/dev/null \
  || { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q "selenium==4.27.1"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
RPORT=$(free_port); FPORT=$(free_port)
ROSTER="http://127.0.0.1:$RPORT"; FRONTEND="http://localhost:$FPORT"
export DATABASE_URL="sqlite://$WORK/roster.db" ROSTER_SECRET_PEPPER="browser-test-pepper-browser-test-01" \
       ROSTER_ADMIN_PASSWORD="browser-admin-password" RUST_LOG=warn
"$BIN" migrate 2>/dev/null
for c in spa-one spa-two; do
  "$BIN" principal create-service "$c" --public --redirect-uri "$FRONTEND/" \
    --post-logout-redirect-uri "$FRONTEND/bye.html" >/dev/null
done
printf '%s' "grace-password-123" | "$BIN" principal create-human grace --scope registry:read --scope billing:admin \
  --password-stdin >/dev/null
"$BIN" serve --listen "127.0.0.1:$RPORT" 2>"$WORK/serve.log" &
PIDS+=($!)
python3 -m http.server "$FPORT" --bind 127.0.0.1 --directory "$ROOT/examples/frontend" >/dev/null 2>&1 &
PIDS+=($!)
curl -sf --retry 50 --retry-connrefused --retry-delay 0 "$ROSTER/readyz" >/dev/null
curl -sf --retry 50 --retry-connrefused --retry-delay 0 "http://127.0.0.1:$FPORT/" >/dev/null
[ -n "${ONLY_PASSKEYS:-}" ] || "$VENV/bin/python" "$HERE/login_test.py" "$ROSTER" "$FRONTEND" grace grace-password-123 "$SHOT" \
  || { echo "--- roster log"; cat "$WORK/serve.log"; exit 1; }
SHOTS="${CONSOLE_SHOTS:-$WORK/shots}"
[ -n "${ONLY_PASSKEYS:-}" ] || "$VENV/bin/python" "$HERE/console_test.py" "$ROSTER" "$ROSTER_ADMIN_PASSWORD" "$SHOTS" \
  || { echo "--- roster log"; cat "$WORK/serve.log"; exit 1; }
# Passkeys need an issuer with a domain name: a second Roster at http://localhost.
PPORT=$(free_port); PASSKEY_ROSTER="http://localhost:$PPORT"
PASSKEY_DB="sqlite://$WORK/passkeys.db"
DATABASE_URL="$PASSKEY_DB" "$BIN" migrate 2>/dev/null
printf '%s' "pat-password-123" | DATABASE_URL="$PASSKEY_DB" "$BIN" principal create-human pat --scope registry:read --scope admin \
  --password-stdin >/dev/null
DATABASE_URL="$PASSKEY_DB" "$BIN" serve --listen "127.0.0.1:$PPORT" --issuer "$PASSKEY_ROSTER" 2>"$WORK/passkeys.log" &
PIDS+=($!)
curl -sf --retry 50 --retry-connrefused --retry-delay 0 "http://127.0.0.1:$PPORT/readyz" >/dev/null
"$VENV/bin/python" "$HERE/passkey_test.py" "$PASSKEY_ROSTER" pat pat-password-123 \
  || { echo "--- roster log"; cat "$WORK/passkeys.log"; exit 1; }
if grep -q panicked "$WORK/serve.log" "$WORK/passkeys.log"; then cat "$WORK/serve.log" "$WORK/passkeys.log"; exit 1; fi
echo "browser: ok (screenshots $SHOT, $SHOTS)"
