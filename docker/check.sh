#!/usr/bin/env bash
# Lint the image and the compose file without an engine: hadolint on the
# Dockerfile, and `docker-compose config` on compose.yaml with secrets made by
# init-secrets.sh in a scratch copy (which also checks that a second run keeps
# the pepper). Usage: docker/check.sh   (needs hadolint and docker-compose)
set -euo pipefail
cd "$(dirname "$0")/.."
hadolint --config docker/.hadolint.yaml docker/Dockerfile
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir "$scratch/docker"
cp docker/compose.yaml docker/init-secrets.sh "$scratch/docker/"
"$scratch/docker/init-secrets.sh" > /dev/null
pepper=$(cat "$scratch/docker/secrets/pepper")
"$scratch/docker/init-secrets.sh" > /dev/null
[ "$pepper" = "$(cat "$scratch/docker/secrets/pepper")" ] || { echo "init-secrets.sh replaced the pepper" >&2; exit 1; }
[ "${#pepper}" -ge 32 ] || { echo "the pepper is shorter than 32 characters" >&2; exit 1; }
(cd "$scratch" && docker-compose -f docker/compose.yaml config -q)
grep -q '^target/' .dockerignore || { echo ".dockerignore does not keep target/ out" >&2; exit 1; }
echo "docker: hadolint and docker-compose config passed"
