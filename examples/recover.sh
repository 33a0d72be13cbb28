. examples/start.sh

# the admin password is lost: whoever can reach the database and its pepper sets a new one
ADMIN_PASSWORD=$(roster recover-admin | field password)               # shown once, on stdout
curl -fsS -d grant_type=password -d username=admin --data-urlencode "password=$ADMIN_PASSWORD" \
     "$R/oauth/token" | field scope                                   # admin

# set a person's password from the command line (their refresh tokens are revoked)
printf 'dave-password-1\n' | roster principal create-human dave --password-stdin > /dev/null
printf 'dave-password-2\n' | roster principal set-password dave --password-stdin | field name
