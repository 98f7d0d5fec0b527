#!/usr/bin/env bash
# Installs what bench/run.sh needs, locally and pinned: the oha load generator into
# bench/.tools (cargo install --locked), LiteLLM's proxy and matplotlib into bench/.venv
# (requirements.txt), Portkey's gateway into bench/node_modules (package-lock.json), and
# from Debian's packages nginx (the one-hop floor hop.py and run.sh compare against) and wrk.
# Idempotent: a step whose stamp matches the pinned versions is skipped.
# Each step may fail on its own; run.sh then skips that comparison and says why in RESULTS.md.
set -uo pipefail
cd "$(dirname "$0")"
OHA_VERSION=1.16.0
status=0

if [ "$(.tools/bin/oha --version 2>/dev/null)" != "oha $OHA_VERSION" ]; then
  echo "setup: building oha $OHA_VERSION into bench/.tools (several minutes, once)" >&2
  if ! cargo install oha --version "$OHA_VERSION" --locked --root .tools --quiet >.oha-install.log 2>&1; then
    echo "setup: cargo install oha failed (see bench/.oha-install.log)" >&2
    status=1
  else
    rm -f .oha-install.log
  fi
fi

if ! command -v nginx >/dev/null 2>&1 || ! command -v wrk >/dev/null 2>&1; then
  echo "setup: installing nginx and wrk from Debian's packages" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  if ! { $SUDO apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
      nginx-light wrk >.apt-install.log 2>&1; }; then
    echo "setup: apt-get install nginx-light wrk failed (see bench/.apt-install.log)" >&2
    status=1
  else
    rm -f .apt-install.log
  fi
  # Debian starts the packaged nginx as a service; the benchmark runs its own instances.
  $SUDO systemctl disable --now nginx >/dev/null 2>&1 || $SUDO service nginx stop >/dev/null 2>&1 || true
fi

want_py=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat .venv/.bench-stamp 2>/dev/null)" != "$want_py" ]; then
  echo "setup: installing LiteLLM's proxy and matplotlib into bench/.venv (requirements.txt)" >&2
  if { [ -x .venv/bin/python ] || python3 -m venv .venv; } &&
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt \
      >.venv-install.log 2>&1; then
    echo "$want_py" >.venv/.bench-stamp
    rm -f .venv-install.log
  else
    echo "setup: pip install failed (see bench/.venv-install.log)" >&2
    status=1
  fi
fi

if [ ! -f node_modules/.bench-stamp ] || [ package-lock.json -nt node_modules/.bench-stamp ]; then
  echo "setup: installing @portkey-ai/gateway into bench/node_modules (npm ci)" >&2
  if npm ci --no-audit --no-fund --loglevel=error >.npm-install.log 2>&1; then
    touch node_modules/.bench-stamp
    rm -f .npm-install.log
  else
    echo "setup: npm ci failed (see bench/.npm-install.log)" >&2
    status=1
  fi
fi
exit $status
