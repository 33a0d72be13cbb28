#!/usr/bin/env sh
# Make docker/secrets/* once: the pepper, the first admin's password, and the
# database password (and the DATABASE_URL that carries it). Run again, it keeps
# what exists: a new pepper would lock Roster out of its own database.
set -eu
dir="$(cd "$(dirname "$0")" && pwd)/secrets"
# The directory is the owner's alone; the files inside are readable, because
# compose mounts them as they are into containers that run as other users
# (Roster as uid 10001, PostgreSQL as postgres).
mkdir -p "$dir"
chmod 700 "$dir"
umask 022
random() { head -c "$1" /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'; }
make() { [ -s "$dir/$1" ] || { printf '%s\n' "$2" > "$dir/$1"; echo "made docker/secrets/$1"; }; }
make pepper "$(random 32)"
make admin_password "$(random 18)"
make db_password "$(random 24)"
make database_url "postgres://roster:$(cat "$dir/db_password")@postgres:5432/roster"
