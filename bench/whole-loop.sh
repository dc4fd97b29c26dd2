#!/usr/bin/env bash
# The example pipeline's work (build, integration test, push, deploy qa and staging) done by hand
# with plain docker and compose commands: the peer that bench/whole-loop.ts times the local runner
# against. Careful, not clever: health is awaited, digests are pinned, everything is torn down.
# Environment: DOCKER_HOST, REGISTRY, REGISTRY_USER, REGISTRY_PASSWORD, BASE_IMAGE, TAG, PROJECT
# (a prefix for the compose projects), COMPOSE ("docker compose" or "docker-compose"), QA_WEB_PORT,
# STAGING_WEB_PORT; PHASE_LOG, if set, gets "<phase> <epoch ns>" as each phase ends.
set -euo pipefail
cd "$(dirname "$0")/../examples/shop"
read -r -a compose <<<"$COMPOSE"
export REGISTRY BASE_IMAGE APP_VERSION="$TAG" QA_WEB_PORT STAGING_WEB_PORT
DOCKER_CONFIG="$(mktemp -d)"; export DOCKER_CONFIG # never the user's docker config
trap 'rm -rf "$DOCKER_CONFIG" "$pinned"' EXIT
pinned="$(mktemp)"

phase() { if [ -n "${PHASE_LOG:-}" ]; then echo "$1 $(date +%s%N)" >>"$PHASE_LOG"; fi; }
phase start

# v2 waits for health itself; v1 has no --wait, so poll every container of the project.
up_healthy() {
  local project="$1"; shift
  if [ "${compose[0]}" = docker ]; then "${compose[@]}" -p "$project" "$@" up -d --no-build --wait --quiet-pull >/dev/null; return; fi
  "${compose[@]}" -p "$project" "$@" up -d --no-build >/dev/null 2>&1
  for _ in $(seq 1 240); do
    states="$(docker ps -a --filter "label=com.docker.compose.project=$project" --format '{{.Status}}')"
    if ! grep -qv '(healthy)\|^Up [^(]*$' <<<"$states"; then return; fi
    sleep 0.25
  done
  echo "$project did not become healthy" >&2; return 1
}

# Build
for service in web api tests; do
  docker build -q --build-arg BASE_IMAGE="$BASE_IMAGE" --build-arg APP_VERSION="$TAG" -t "$REGISTRY/shop/$service:$TAG" -t "$REGISTRY/shop/$service:latest" "./$service" >/dev/null
done
phase build

# Integration tests: the app until healthy, then the runner, then teardown
up_healthy "$PROJECT-test" -f docker-compose.yml
"${compose[@]}" -p "$PROJECT-test" -f docker-compose.yml --profile test run --rm -T tests >/dev/null
"${compose[@]}" -p "$PROJECT-test" -f docker-compose.yml down -v --remove-orphans >/dev/null 2>&1
phase test

# Push and pin by digest (the cache is the third-party image, pinned to what its tag points at)
printf '%s' "$REGISTRY_PASSWORD" | docker login -u "$REGISTRY_USER" --password-stdin "$REGISTRY" >/dev/null 2>&1
echo "services:" >"$pinned"
for service in web api tests; do
  digest=""
  for tag in "$TAG" latest; do
    digest="$(docker push "$REGISTRY/shop/$service:$tag" | sed -n 's/.*digest: \(sha256:[0-9a-f]\{64\}\).*/\1/p' | tail -1)"
  done
  printf '  %s:\n    image: %s@%s\n' "$service" "$REGISTRY/shop/$service" "$digest" >>"$pinned"
done
cache="$(docker inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$REGISTRY/third-party/cache:1.0" | grep -m1 "^$REGISTRY/third-party/cache@")"
printf '  cache:\n    image: %s\n' "$cache" >>"$pinned"
phase push

# Deploy qa, then staging, each until healthy
up_healthy "$PROJECT-qa" -f docker-compose.yml -f docker-compose.qa.yml -f "$pinned"
phase qa
# Staging as the example pipeline does it: what runs there now (its promotion diff's question),
# the deploy until healthy, then 5 s of watching (its bake window): every container still up.
staging_states() { docker ps -a --filter "label=com.docker.compose.project=$PROJECT-staging" --format "$1"; }
staging_states '{{.Image}}' >/dev/null
up_healthy "$PROJECT-staging" -f docker-compose.yml -f docker-compose.staging.yml -f "$pinned"
sleep 5
if staging_states '{{.Status}}' | grep -qv '(healthy)\|^Up [^(]*$'; then echo "staging did not stay up for 5 s" >&2; exit 1; fi
phase staging
