export ROSTER_HEALTH_INTERVAL=2s                          # check health every 2 s (default 10 s)
. examples/start.sh

# a service in the category "application", and its token
SECRET=$(roster principal create-service inventory --category application:5 | field client_secret)
TOKEN=$(curl -fsS -u "inventory:$SECRET" -d grant_type=client_credentials "$R/oauth/token" | field access_token)
AUTH="Authorization: Bearer $TOKEN"

# a stand-in for it: a health endpoint and a manifest, served by Python
STANDIN_PORT=${STANDIN_PORT:-9000}
SITE=$(mktemp -d) && echo ok > "$SITE/health"
echo '{"name":"Inventory","code":"inventory","pages":[{"name":"Stock","code":"stock","module_link":"/inventory/stock","icon":"box","menu_position":10}]}' \
  > "$SITE/getModules.json"
python3 -m http.server "$STANDIN_PORT" --bind 127.0.0.1 --directory "$SITE" 2> /dev/null &
STANDIN_PID=$!
curl -fs -o /dev/null --retry 30 --retry-connrefused --retry-delay 1 "http://127.0.0.1:$STANDIN_PORT/health"

# wait until GET $1 shows $2: each blocking query returns at the registry's next change, so nothing polls
wait_for() {
  local index=0
  until curl -fsS -H "$AUTH" "$R$1" | grep -q "$2"; do
    index=$(curl -fsS -o /dev/null -D - -H "$AUTH" "$R/api/v1/services?index=$index&wait=30s" \
            | tr -d '\r' | awk 'tolower($1) == "x-roster-index:" { print $2 }')
  done
}

# register it: where it runs, its health check, its manifest, and a lease it renews by heartbeat
curl -fsS -X PUT -H "$AUTH" -H 'content-type: application/json' "$R/api/v1/services/inventory/registration" \
     -d "{\"base_url\":\"http://127.0.0.1:$STANDIN_PORT/\",\"health_url\":\"/health\",\"modules_url\":\"/getModules.json\",\"ttl_seconds\":60}"; echo
curl -fsS -X POST -H "$AUTH" "$R/api/v1/services/inventory/heartbeat"; echo          # renews the 60 s lease
wait_for /api/v1/modules '"stock"'                                                      # the manifest was pulled
curl -fsS "$R/api/v1/modules"; echo                                                     # its pages, for anyone
curl -fsS -H "$AUTH" "$R/api/v1/categories/application"; echo                          # services by priority

# a service may push its manifest instead; the last writer wins (a pull replaces it only when the file changes)
curl -fsS -X PUT -H "$AUTH" -H 'content-type: application/json' "$R/api/v1/services/inventory/modules" \
     -d '{"name":"Inventory","code":"inventory","pages":[{"name":"Stock","code":"stock","module_link":"/inventory/stock","icon":"box","menu_position":10},{"name":"Orders","code":"orders","module_link":"/inventory/orders","icon":"cart","menu_position":20}]}' \
  | field manifest_source                                                               # pushed

# its health endpoint goes away: at the next check it is down, and its pages leave the menu
rm "$SITE/health"
wait_for /api/v1/services/inventory '"status":"down"'
curl -fsS "$R/api/v1/modules"; echo                                                     # {"items":[],...}

kill "$STANDIN_PID"; rm -rf "$SITE"
