# Two services built on roster-client (client/examples/service.rs): orders, and billing, which calls orders.
. examples/start.sh
SERVICE_BIN=${SERVICE_BIN:-}      # the tests pass the one `cargo test` built
if [ -z "$SERVICE_BIN" ]; then cargo build -q -p roster-client --features actix --example service && SERVICE_BIN=target/debug/examples/service; fi
ORDERS_PORT=${ORDERS_PORT:-9101} BILLING_PORT=${BILLING_PORT:-9102}
ORDERS="http://127.0.0.1:$ORDERS_PORT" BILLING="http://127.0.0.1:$BILLING_PORT"

# their principals: billing may read orders
ORDERS_SECRET=$(roster principal create-service orders | field client_secret)
BILLING_SECRET=$(roster principal create-service billing --scope orders:read | field client_secret)

# start both; each logs in, follows the revocation feed, and registers itself with a menu page
ROSTER_CLIENT_SECRET=$ORDERS_SECRET "$SERVICE_BIN" --roster "$R" --name orders --listen "127.0.0.1:$ORDERS_PORT" 2> orders.log &
ORDERS_PID=$!
ROSTER_CLIENT_SECRET=$BILLING_SECRET "$SERVICE_BIN" --roster "$R" --name billing --listen "127.0.0.1:$BILLING_PORT" \
  --calls "orders=$ORDERS" 2> billing.log &
BILLING_PID=$!
ADMIN=$(curl -fsS -d grant_type=password -d username=admin --data-urlencode "password=$ADMIN_PASSWORD" "$R/oauth/token" | field access_token)
until_up() {   # blocking queries on the registry: each returns at its next change
  local index=0
  until curl -fsS -H "Authorization: Bearer $ADMIN" "$R/api/v1/services/$1" | grep -q '"status":"up"'; do
    index=$(curl -fsS -o /dev/null -D - -H "Authorization: Bearer $ADMIN" "$R/api/v1/services?index=$index&wait=30s" \
            | tr -d '\r' | awk 'tolower($1) == "x-roster-index:" { print $2 }')
  done
}
until_up orders && until_up billing
curl -fsS "$R/api/v1/modules" | python3 -c 'import json,sys; print(sorted(p["code"] for m in json.load(sys.stdin)["items"] for p in m["pages"]))'

# billing's token for orders (RFC 8707 resource): orders checks it offline
TOKEN=$(curl -fsS -u "billing:$BILLING_SECRET" -d grant_type=client_credentials -d resource=orders "$R/oauth/token" | field access_token)
curl -fsS -H "Authorization: Bearer $TOKEN" "$ORDERS/orders"; echo                        # billing holds orders:read
curl -s -o /dev/null -w '%{http_code}\n' "$ORDERS/orders"                                  # 401: no token

# billing calls orders with its own cached token (asked of it by orders' token for billing)
CALLER=$(curl -fsS -u "orders:$ORDERS_SECRET" -d grant_type=client_credentials -d resource=billing "$R/oauth/token" | field access_token)
curl -fsS -H "Authorization: Bearer $CALLER" "$BILLING/relay"; echo

# revoke billing's token: orders refuses it as soon as the feed brings the news (well within a second)
curl -fsS -u "billing:$BILLING_SECRET" -d "token=$TOKEN" "$R/oauth/revoke"; echo                 # {}
for _ in $(seq 1000); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$ORDERS/orders")" = 401 ] && break
done
curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $TOKEN" "$ORDERS/orders"   # 401

# stop orders (Ctrl-C): it leaves the registry on the way out
kill -INT "$ORDERS_PID" && wait "$ORDERS_PID"
curl -fsS -H "Authorization: Bearer $ADMIN" "$R/api/v1/services/orders" | field status     # unknown
kill -INT "$BILLING_PID" && wait "$BILLING_PID"
