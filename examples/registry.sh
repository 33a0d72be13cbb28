export ROSTER_HEALTH_INTERVAL=2s                          # check health every 2 s (default 10 s)
. examples/start.sh

# a service in the category "application", and its token
SECRET=$(roster principal create-service inventory --category application:5 | field client_secret)
TOKEN=$(curl -fsS -u "inventory:$SECRET" -d grant_type=client_credentials "$R/oauth/token" | field access_token)
AUTH="Authorization: Bearer $TOKEN"

# two replicas of it: each a health endpoint and a manifest, served by Python
A_PORT=${STANDIN_PORT:-9000} B_PORT=${STANDIN_B_PORT:-9001}
MANIFEST='{"name":"Inventory","code":"inventory","pages":[{"name":"Stock","code":"stock","module_link":"/inventory/stock","icon":"box","menu_position":10}]}'
STANDINS=()
for port in "$A_PORT" "$B_PORT"; do
  mkdir -p "$DEMO/site-$port" && echo ok > "$DEMO/site-$port/health" && echo "$MANIFEST" > "$DEMO/site-$port/getModules.json"
  python3 -m http.server "$port" --bind 127.0.0.1 --directory "$DEMO/site-$port" 2> /dev/null &
  STANDINS+=($!)
  curl -fs -o /dev/null --retry 30 --retry-connrefused --retry-delay 1 "http://127.0.0.1:$port/health"
done

# wait until GET $1 shows $2: a blocking query on that very view answers when the view changes, so nothing polls
wait_for() {
  local query="" headers; headers=$(mktemp)
  until curl -fsS -D "$headers" -H "$AUTH" "$R$1$query" | grep -q "$2"; do
    query="?index=$(tr -d '\r' < "$headers" | awk 'tolower($1) == "x-roster-index:" { print $2 }')&wait=30s"
  done
  rm -f "$headers"
}
register() {   # register() INSTANCE PORT [EXTRA_JSON]: where it runs, its checks, and a lease renewed by heartbeat
  curl -fsS -o /dev/null -X PUT -H "$AUTH" -H 'content-type: application/json' "$R/api/v1/services/inventory/instances/$1" \
       -d "{\"base_url\":\"http://127.0.0.1:$2/\",\"health_url\":\"/health\",\"modules_url\":\"/getModules.json\",\"ttl_seconds\":60${3:-}}"
}
live() {       # the instances a caller would pick from the category
  curl -fsS -H "$AUTH" "$R/api/v1/categories/application" \
    | python3 -c 'import json,sys; print([i["id"] for i in json.load(sys.stdin)["services"][0]["instances"]])'
}

# register both replicas; a down instance needs 2 failed checks in a row (default 3), and the service a description
register inv-a "$A_PORT" ',"failures_before_down":2,"description":"Stock and orders"'
register inv-b "$B_PORT" ',"failures_before_down":2'
curl -fsS -X POST -H "$AUTH" "$R/api/v1/services/inventory/instances/inv-a/heartbeat" | field status   # up
wait_for /api/v1/modules '"stock"'                                                      # the manifest was pulled
curl -fsS "$R/api/v1/modules"; echo                                                     # its pages, for anyone
live                                                                                    # ['inv-a', 'inv-b']

# drain inv-b before a deploy: still registered and checked, but callers stop picking it
register inv-b "$B_PORT" ',"failures_before_down":2,"draining":true'
live                                                                                    # ['inv-a']
register inv-b "$B_PORT" ',"failures_before_down":2'                                    # back in service
live                                                                                    # ['inv-a', 'inv-b']

# a service may push its manifest instead; the last writer wins (a pull replaces it only when the file changes)
curl -fsS -X PUT -H "$AUTH" -H 'content-type: application/json' "$R/api/v1/services/inventory/modules" \
     -d '{"name":"Inventory","code":"inventory","pages":[{"name":"Stock","code":"stock","module_link":"/inventory/stock","icon":"box","menu_position":10},{"name":"Orders","code":"orders","module_link":"/inventory/orders","icon":"fa fa-cart-shopping","menu_position":20}]}' \
  | field manifest_source                                                               # pushed

# inv-a's health endpoint goes away: after two failed checks it is down, but the service stays up on inv-b
rm "$DEMO/site-$A_PORT/health"
wait_for /api/v1/categories/application '"instances": *\[{"id":"inv-b"'
live                                                                                    # ['inv-b']
curl -fsS -H "$AUTH" "$R/api/v1/services/inventory" | field status                     # up

# inv-b's goes too: no instance is up, the service is down, and its pages leave the menu
rm "$DEMO/site-$B_PORT/health"
wait_for /api/v1/services/inventory '"name":"inventory","status":"down"'
curl -fsS -H "$AUTH" "$R/api/v1/services/inventory" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["transitions"][0]["reason"])'  # why, newest first
curl -fsS "$R/api/v1/modules"; echo                                                     # {"items":[],...}

kill "${STANDINS[@]}"
