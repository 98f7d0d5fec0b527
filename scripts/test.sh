#!/usr/bin/env bash
# Runs every test of qwen-gateway: Rust unit and integration tests (gateway + mock Model Studio
# on loopback ports), then the real-client suites against the real binaries: Python (openai,
# LangChain, LlamaIndex, OpenAI Agents SDK, pydantic-ai, instructor), Node (openai, LangChain
# JS, Vercel AI SDK, Codex CLI), the dashboard in Chromium (tests/dashboard, playwright-core)
# and Rust (async-openai). Installs the client packages locally
# (.venv/, tests/clients/node/node_modules/, target/clients/) on first use. Ends with a 45-second soak
# (scripts/soak.sh; run it alone with --minutes N for a long one).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo build"
cargo build --workspace --bins

echo "== cargo test"
cargo test --workspace

echo "== Python clients (tests/clients/python/requirements.txt)"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/clients/python/requirements.txt
.venv/bin/python -m pytest tests/clients/python -q -p no:cacheprovider
# LlamaIndex and instructor cap openai below 3 (openai-agents needs 3): a second venv.
if [ ! -x .venv-openai2/bin/python ]; then
  python3 -m venv .venv-openai2
fi
.venv-openai2/bin/pip install --quiet --disable-pip-version-check -r tests/clients/python/openai2/requirements.txt
.venv-openai2/bin/python -m pytest tests/clients/python/openai2 -q -p no:cacheprovider

if [ -f tests/clients/node/package.json ]; then
  echo "== Node clients (tests/clients/node/package.json)"
  (
    cd tests/clients/node
    if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
      npm ci --no-audit --no-fund --loglevel=error
    fi
    node --test --test-reporter=spec
  )
fi
echo "== Dashboard in a browser (tests/dashboard: playwright-core driving /usr/bin/chromium)"
(
  cd tests/dashboard
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
    npm ci --no-audit --no-fund --loglevel=error
  fi
  node --test --test-reporter=spec
)
echo "== Rust clients (async-openai, tests/clients/rust)"
cargo test --locked --manifest-path tests/clients/rust/Cargo.toml --target-dir target/clients

echo "== soak (short: 45 s of mixed traffic with faults; memory and file descriptors must not grow)"
scripts/soak.sh --seconds 45

echo "== all tests passed"
