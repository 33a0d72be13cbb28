# Token exchange (RFC 8693): orders acts for a person towards billing, and the token says so.
. examples/start.sh
claim() { python3 -c 'import base64,json,sys; p=sys.stdin.read().split(".")[1]; c=json.loads(base64.urlsafe_b64decode(p+"="*(-len(p)%4)))
for k in sys.argv[1].split("."): c=c[k]
print(c)' "$1"; }   # one claim of a JWT, unverified: for reading only
EXCHANGE=urn:ietf:params:oauth:grant-type:token-exchange ACCESS_TOKEN=urn:ietf:params:oauth:token-type:access_token

# alice, and two services: orders may exchange the tokens sent to it for billing, nothing else
printf 'alice-password-1' | roster principal create-human alice --scope invoices:read --password-stdin > /dev/null
ORDERS_SECRET=$(roster principal create-service orders --exchange-audience billing | field client_secret)
BILLING_SECRET=$(roster principal create-service billing | field client_secret)

# alice's frontend gets her a token for orders, and calls orders with it
ALICE=$(curl -fsS -d grant_type=password -d username=alice -d password=alice-password-1 -d resource=orders "$R/oauth/token" | field access_token)

# orders, acting for alice, trades that token for one addressed to billing
ANSWER=$(curl -fsS -u "orders:$ORDERS_SECRET" -d grant_type=$EXCHANGE -d subject_token_type=$ACCESS_TOKEN \
  -d "subject_token=$ALICE" -d audience=billing "$R/oauth/token")
echo "$ANSWER" | field issued_token_type
FOR_BILLING=$(echo "$ANSWER" | field access_token)
echo "$FOR_BILLING" | claim name; echo "$FOR_BILLING" | claim aud; echo "$FOR_BILLING" | claim act.client_id   # alice, to billing, through orders

# billing asks Roster about it: alice's token, orders acting
curl -fsS -u "billing:$BILLING_SECRET" -d "token=$FOR_BILLING" "$R/oauth/introspect" | field username

# orders may not act towards a service its policy does not name
curl -sS -u "orders:$ORDERS_SECRET" -d grant_type=$EXCHANGE -d subject_token_type=$ACCESS_TOKEN \
  -d "subject_token=$ALICE" -d audience=ledger "$R/oauth/token"; echo

# alice's token is revoked: what orders got from it ends too
curl -fsS -d "token=$ALICE" "$R/oauth/revoke"; echo
curl -fsS -u "billing:$BILLING_SECRET" -d "token=$FOR_BILLING" "$R/oauth/introspect"; echo
