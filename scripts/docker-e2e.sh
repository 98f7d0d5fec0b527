#!/usr/bin/env bash
# Docker end-to-end test: builds the project's real Dockerfile with a real engine and runs
# the image and the compose files against the mock Model Studio (docs/deploy.md, "What is
# verified, and how").
#
#   scripts/docker-e2e.sh            # as root; CI runs it from .ci/run after scripts/test.sh
#
# - Installs Debian's docker.io (20.10: dockerd, containerd, runc) and docker-compose (1.29)
#   when missing, and starts its own containerd and dockerd on a private data root; both are
#   stopped by PID at the end, whatever happens.
# - Base images: the real ones when present or pullable; otherwise local stand-ins with the
#   same names, built from Debian's mirror (debootstrap), cached in the data root by a hash
#   of their recipe and rebuilt only when it changes:
#     rust:RUST_VERSION-slim-bookworm       bookworm + gcc, libc6-dev, CA certificates (with
#                                           this host's: TLS may pass an intercepting proxy),
#                                           Debian's rustc-web/cargo-web
#     gcr.io/distroless/cc-debian12:nonroot FROM scratch: glibc's ld.so, libc, libm,
#                                           libgcc_s, CA bundle, /etc/passwd with nonroot
#                                           (65532), /tmp
#     redis:REDIS_TAG                       bookworm + Debian's redis-server
# - Builds the Dockerfile unchanged (BuildKit; the cargo cache mounts live in the data root).
# - Runs the image with `docker run`, then docker-compose.yml with the secrets override, then
#   the `team` profile, and checks what a user relies on (see the check lines it prints).
#
# The steps are in scripts/docker-e2e/ (functions only, sourced below): daemon.sh (the
# private engine), images.sh (base images, stand-ins, the project's image), checks.sh (the
# check helpers, the docker run checks), compose.sh (the docker-compose and team runs).
#
# Environment:
#   QWEN_E2E_DOCKER_ROOT  data root (images, build cache); default
#                         /var/cache/qwen-gateway-docker-e2e, kept between runs
#   QWEN_E2E_BASE_IMAGES  auto (default: real when present or pullable, else stand-ins),
#                         standin (never pull), real (pull, fail if that fails)
#   QWEN_E2E_MOCK_BIN     mock-model-studio binary (glibc, bookworm-compatible); default
#                         ${CARGO_TARGET_DIR:-target}/debug/mock-model-studio, built if missing
#   QWEN_E2E_KEEP_IMAGE=1 keep qwen-gateway:local afterwards (it is kept anyway; dangling
#                         older builds are pruned)
#
# Never prints a key or the admin token. Needs the host ports 127.0.0.1:8080, 8081 and 8082
# free (the compose files publish them).
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
# Before the cd: the path of this script may be relative to the caller's directory.
# shellcheck source=docker-e2e/checks.sh
source "$(dirname "${BASH_SOURCE[0]}")/docker-e2e/checks.sh"
# shellcheck source=docker-e2e/daemon.sh
source "$(dirname "${BASH_SOURCE[0]}")/docker-e2e/daemon.sh"
# shellcheck source=docker-e2e/images.sh
source "$(dirname "${BASH_SOURCE[0]}")/docker-e2e/images.sh"
# shellcheck source=docker-e2e/compose.sh
source "$(dirname "${BASH_SOURCE[0]}")/docker-e2e/compose.sh"
cd "$(dirname "$0")/.."
REPO="$PWD"

RUST_VERSION="$(sed -n 's/^ARG RUST_VERSION=//p' Dockerfile)"
BUILDER_IMAGE="rust:${RUST_VERSION}-slim-bookworm"
RUNTIME_IMAGE="$(sed -n 's/^FROM \(gcr\.io[^ ]*\).*/\1/p' Dockerfile)"
REDIS_IMAGE="$(sed -n 's/^ *image: \(redis:[^ ]*\)$/\1/p' docker-compose.yml)"
GATEWAY_IMAGE="$(sed -n 's/^ *image: \(qwen-gateway:[^ ]*\)$/\1/p' docker-compose.yml)"
[ -n "$RUST_VERSION" ] && [ -n "$RUNTIME_IMAGE" ] && [ -n "$REDIS_IMAGE" ] && [ -n "$GATEWAY_IMAGE" ] || {
  echo "docker-e2e: cannot read the image names from Dockerfile/docker-compose.yml" >&2
  exit 1
}

DATA_ROOT="${QWEN_E2E_DOCKER_ROOT:-/var/cache/qwen-gateway-docker-e2e}"
BASE_MODE="${QWEN_E2E_BASE_IMAGES:-auto}"
PROJECT=qgw-e2e
STANDIN_LABEL=org.qwen-gateway.e2e.recipe
COMPOSE_STOP_PERIOD="$(sed -n 's/^ *stop_grace_period: *\([0-9]*\)s$/\1/p' docker-compose.yml)"

PASSED=0
FAILED=0
FIGURES=()
T_START=$SECONDS

if [ "$(id -u)" -ne 0 ]; then
  echo "docker-e2e: needs root (it starts its own dockerd); CI runs as root" >&2
  exit 1
fi

# --- engine -------------------------------------------------------------------------------

install_engine

RUN="$(mktemp -d /tmp/qgw-e2e.XXXXXX)"
chmod 0755 "$RUN"
mkdir -p "$RUN/bin" "$DATA_ROOT"
# Debian's 20.10 CLI for everything (the machine's own `docker` may be another version
# without buildx); docker-compose finds it on PATH too.
ln -s /usr/bin/docker "$RUN/bin/docker"
export PATH="$RUN/bin:$PATH"
export DOCKER_HOST="unix://$RUN/docker.sock"
export DOCKER_BUILDKIT=1
unset DOCKER_CONTEXT DOCKER_CONFIG DOCKER_TLS_VERIFY DOCKER_CERT_PATH COMPOSE_FILE COMPOSE_PROJECT_NAME
export DOCKER_CONFIG="$RUN/docker-config"
mkdir -p "$DOCKER_CONFIG"

CONTAINERD_PID=""
DOCKERD_PID=""
DOCKER0_EXISTED=""
if ip link show docker0 >/dev/null 2>&1; then DOCKER0_EXISTED=1; fi

trap cleanup EXIT
trap 'exit 130' INT TERM

start_engine

# --- base images --------------------------------------------------------------------------

base_images

# --- the project's image ------------------------------------------------------------------

build_gateway_image

# --- fixtures -----------------------------------------------------------------------------

MOCK_BIN="${QWEN_E2E_MOCK_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/debug/mock-model-studio}"
if [ ! -x "$MOCK_BIN" ]; then
  say "building mock-model-studio"
  cargo build --package mock-model-studio --bin mock-model-studio
fi
[ -x "$MOCK_BIN" ] || { echo "no mock binary at $MOCK_BIN" >&2; exit 1; }
cp "$MOCK_BIN" "$RUN/mock-model-studio"
chmod 0755 "$RUN/mock-model-studio"

# Keys: random, only in files and the environment, never printed. The mock accepts only
# UPSTREAM_KEY, so an answer proves the gateway sent the key it was given.
rand() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
UPSTREAM_KEY="sk-e2e-$(rand)"
ADMIN_TOKEN="$(rand)"
FORWARD="accept,content-type,user-agent,idempotency-key,openai-beta,x-mock-tokens,x-mock-delay-ms"
MODEL="qwen3-max-2026-01-23"

# --- 1. docker run ------------------------------------------------------------------------

single_container_run

# --- 2. and 3. docker-compose ---------------------------------------------------------------

for p in 8080 8081 8082; do
  port_free "$p" || { echo "host port $p is taken; the compose files publish it" >&2; exit 1; }
done

compose_single_run
compose_team_run

say "figures"
for f in "${FIGURES[@]}"; do echo "  $f"; done
echo "  whole run: $((SECONDS - T_START)) s"
echo "docker-e2e: $PASSED passed, $FAILED failed"
