#!/usr/bin/env bash
# Builds release binaries, starts the mock Model Studio (low-latency mode: no split writes)
# and qwen-gateway in front of it on loopback, then runs the side-by-side latency benchmark.
# Usage: bench/run.sh [qwen-bench args, e.g. --rounds 5 --requests 300]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --bins --quiet
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

wait_for() { # file pattern → first match of the pattern's capture, within 15 s
  for _ in $(seq 1 300); do
    if m=$(grep -oE "$2" "$1" 2>/dev/null | head -1) && [ -n "$m" ]; then echo "$m"; return 0; fi
    sleep 0.05
  done
  echo "timed out waiting for '$2' in $1" >&2; cat "$1" >&2; return 1
}

target/release/mock-model-studio --listen 127.0.0.1:0 --no-split >"$work/mock.log" 2>&1 &
pids+=($!)
mock=$(wait_for "$work/mock.log" 'http://127\.0\.0\.1:[0-9]+')
cat >"$work/gw.toml" <<TOML
[server]
listen = "127.0.0.1:0"
[upstream]
regions = ["bench"]
[regions.bench]
base_url = "$mock"
api_key_env = ["BENCH_UPSTREAM_KEY"]
[store]
url = "memory"
TOML
BENCH_UPSTREAM_KEY=sk-bench target/release/qwen-gateway serve --config "$work/gw.toml" >"$work/gw.log" 2>&1 &
pids+=($!)
gw=$(wait_for "$work/gw.log" 'http://127\.0\.0\.1:[0-9]+')
echo "machine: $(nproc) cores, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
target/release/qwen-bench --direct "$mock" --gateway "$gw/v1" "$@"
