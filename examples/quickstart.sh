. examples/start.sh

# two services: billing gets tokens, reports introspects them (each secret is shown once)
SECRET=$(roster principal create-service billing --scope invoices:read | field client_secret)
RS_SECRET=$(roster principal create-service reports | field client_secret)

# a token for billing (client_secret_basic), and who it says the caller is
TOKEN=$(curl -fsS -u "billing:$SECRET" -d grant_type=client_credentials "$R/oauth/token" | field access_token)
curl -fsS -H "Authorization: Bearer $TOKEN" "$R/api/v1/me"; echo
curl -fsS "$R/.well-known/jwks.json"; echo                       # what any service verifies tokens with

# introspect it as another service, revoke it as its owner, introspect again
curl -fsS -u "reports:$RS_SECRET" -d "token=$TOKEN" "$R/oauth/introspect"; echo    # {"active":true,...}
curl -fsS -u "billing:$SECRET" -d "token=$TOKEN" "$R/oauth/revoke"; echo
curl -fsS -u "reports:$RS_SECRET" -d "token=$TOKEN" "$R/oauth/introspect"; echo    # {"active":false}

# a person logs in with a password, then refreshes (the refresh token rotates)
REFRESH=$(curl -fsS -d grant_type=password -d username=admin --data-urlencode "password=$ADMIN_PASSWORD" \
          "$R/oauth/token" | field refresh_token)
curl -fsS -d grant_type=refresh_token -d "refresh_token=$REFRESH" "$R/oauth/token"; echo
