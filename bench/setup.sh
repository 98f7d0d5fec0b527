#!/usr/bin/env bash
# Installs the comparison gateways locally, pinned: LiteLLM's proxy (and matplotlib for the
# chart) into bench/.venv, Portkey's gateway into bench/node_modules (package-lock.json).
# Idempotent: a step whose stamp matches the pinned versions is skipped.
# Each step may fail on its own; run.sh then skips that comparison and says why in RESULTS.md.
set -uo pipefail
cd "$(dirname "$0")"
LITELLM_VERSION=1.110.2
MATPLOTLIB_VERSION=3.10.9
want_py="litellm[proxy]==$LITELLM_VERSION matplotlib==$MATPLOTLIB_VERSION"
status=0

if [ "$(cat .venv/.bench-stamp 2>/dev/null)" != "$want_py" ]; then
  echo "setup: installing $want_py into bench/.venv" >&2
  if { [ -x .venv/bin/python ] || python3 -m venv .venv; } &&
    .venv/bin/python -m pip install --quiet --disable-pip-version-check \
      "litellm[proxy]==$LITELLM_VERSION" "matplotlib==$MATPLOTLIB_VERSION" >.venv-install.log 2>&1; then
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
