. examples/start.sh

# register a frontend: a public client (no secret) that may send people back to one address
roster principal create-service shop-ui --public \
  --redirect-uri http://localhost:5173/callback \
  --post-logout-redirect-uri http://localhost:5173/ | field client_id
printf '%s' 'erin-password-1' | roster principal create-human erin --email erin@example.org --password-stdin > /dev/null

# what the browser does, with curl: PKCE values, the login page, the form, the code
VERIFIER=$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
CHALLENGE=$(python3 -c 'import base64,hashlib,sys; print(base64.urlsafe_b64encode(hashlib.sha256(sys.argv[1].encode()).digest()).decode().rstrip("="))' "$VERIFIER")
CB=http://localhost:5173/callback
JAR=$(mktemp)                                                           # the browser's cookies
PAGE=$(curl -fsS -c "$JAR" -G "$R/oauth/authorize" -d response_type=code -d client_id=shop-ui \
  --data-urlencode "redirect_uri=$CB" --data-urlencode "scope=openid profile email" -d state=s1 \
  -d code_challenge="$CHALLENGE" -d code_challenge_method=S256)
CSRF=$(echo "$PAGE" | grep -o 'name="csrf" value="[^"]*"' | cut -d'"' -f4)
BACK=$(curl -sS -b "$JAR" -c "$JAR" -o /dev/null -w '%{redirect_url}' "$R/oauth/login" \
  -d response_type=code -d client_id=shop-ui --data-urlencode "redirect_uri=$CB" \
  --data-urlencode "scope=openid profile email" -d state=s1 -d code_challenge="$CHALLENGE" \
  -d code_challenge_method=S256 -d csrf="$CSRF" -d username=erin -d password=erin-password-1)
echo "$BACK"                                # http://localhost:5173/callback?code=...&state=s1&iss=...
CODE=$(python3 -c 'import sys,urllib.parse as u; print(u.parse_qs(u.urlsplit(sys.argv[1]).query)["code"][0])' "$BACK")

# the frontend exchanges the code with its verifier, and asks who logged in
TOKENS=$(curl -fsS "$R/oauth/token" -d grant_type=authorization_code -d client_id=shop-ui \
  -d code="$CODE" --data-urlencode "redirect_uri=$CB" -d code_verifier="$VERIFIER")
echo "$TOKENS" | field scope                                            # email openid profile; an id_token too
curl -fsS -H "Authorization: Bearer $(echo "$TOKENS" | field access_token)" "$R/oauth/userinfo"; echo
