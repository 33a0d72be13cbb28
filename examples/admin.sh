. examples/start.sh

# an admin token: the first admin logs in with the password grant
ADMIN=$(curl -fsS -d grant_type=password -d username=admin --data-urlencode "password=$ADMIN_PASSWORD" \
        "$R/oauth/token" | field access_token)
H="Authorization: Bearer $ADMIN"
J='content-type: application/json'

# create a service (its first client_secret is in the answer, shown once) and a person
MAILER=$(curl -fsS -H "$H" -H "$J" "$R/api/v1/principals" \
  -d '{"kind":"service","name":"mailer","scopes":["mail:send"],"categories":[{"name":"notification","priority":10}]}')
MAILER_ID=$(echo "$MAILER" | field id)
OLD_SECRET_ID=$(echo "$MAILER" | field secret_id)
CAROL_ID=$(curl -fsS -H "$H" -H "$J" "$R/api/v1/principals" \
  -d '{"kind":"human","name":"carol","email":"carol@example.org","password":"carol-password-1","scopes":["reports:read"]}' | field id)

# list and filter: kind, status, category, q (name prefix), limit, cursor
curl -fsS -H "$H" "$R/api/v1/principals?kind=service&category=notification&limit=20"; echo
curl -fsS -H "$H" "$R/api/v1/principals/$MAILER_ID"; echo

# change fields; disable and enable again
curl -fsS -X PATCH -H "$H" -H "$J" "$R/api/v1/principals/$MAILER_ID" -d '{"scopes":["mail:send","mail:bulk"]}'; echo
curl -fsS -X PATCH -H "$H" -H "$J" "$R/api/v1/principals/$MAILER_ID" -d '{"status":"disabled"}'; echo
curl -fsS -X PATCH -H "$H" -H "$J" "$R/api/v1/principals/$MAILER_ID" -d '{"status":"active"}'; echo

# rotate the secret without downtime: add a new one, deploy it, then delete the old one
NEW_SECRET=$(curl -fsS -X POST -H "$H" "$R/api/v1/principals/$MAILER_ID/secrets" | field client_secret)
curl -fsS -H "$H" "$R/api/v1/principals/$MAILER_ID/secrets"; echo                   # metadata only, never secrets
curl -fsS -X DELETE -H "$H" "$R/api/v1/principals/$MAILER_ID/secrets/$OLD_SECRET_ID"  # stops working at once
curl -fsS -u "mailer:$NEW_SECRET" -d grant_type=client_credentials "$R/oauth/token" | field token_type

# passwords: an admin sets one; the person changes their own with current_password
curl -fsS -X PUT -H "$H" -H "$J" "$R/api/v1/principals/$CAROL_ID/password" -d '{"password":"carol-password-2"}'
CAROL=$(curl -fsS -d grant_type=password -d username=carol -d password=carol-password-2 "$R/oauth/token" | field access_token)
curl -fsS -X PUT -H "Authorization: Bearer $CAROL" -H "$J" "$R/api/v1/principals/$CAROL_ID/password" \
     -d '{"current_password":"carol-password-2","password":"carol-password-3"}'

# the audit log, newest first: filter by principal, type, since
curl -fsS -H "$H" "$R/api/v1/audit?type=password.changed&since=2026-01-01T00:00:00Z"; echo

# DELETE disables the principal and revokes its refresh tokens
curl -fsS -X DELETE -H "$H" "$R/api/v1/principals/$MAILER_ID"; echo
