#!/usr/bin/env bash
# Figures for docs/reliability.md ("Event parsing: linear and lossy", "Alias rewrite without
# a DOM"): the release gateway in front of the release mock, on loopback.
#
#   scripts/measure-bounds.sh [--no-build]
#
# 1. Chat, plain and streaming, with one 8 MiB and one 16 MiB upstream event written in
#    16 KiB pieces (`x-mock-chunk-bytes`): the client's wall time.
# 2. `/v1/responses` with one ~10 MB body (165 000 small input messages), aliased
#    (`gpt-4o`, so `model` is rewritten) and not: the gateway's peak RSS (VmHWM) growth
#    over a warmed-up process, each in a fresh gateway.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
if [ "${1:-}" != "--no-build" ]; then
  cargo build --quiet --release -p qwen-gateway -p mock-model-studio
fi

work=$(mktemp -d)
mock_pid=""
gw_pid=""
cleanup() {
  for pid in "$gw_pid" "$mock_pid"; do
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$work"
}
trap cleanup EXIT

# Waits (at most 20 s) for a line matching $2 in file $1 and prints the address after it.
address_in() {
  local file=$1 pattern=$2
  for _ in $(seq 200); do
    if grep -q "$pattern" "$file" 2>/dev/null; then
      grep -o "$pattern[0-9.:]*" "$file" | head -1 | sed "s|$pattern||"
      return 0
    fi
    sleep 0.1
  done
  echo "timed out waiting for '$pattern' in $file:" >&2
  cat "$file" >&2
  return 1
}

"$target/release/mock-model-studio" --listen 127.0.0.1:0 --max-recorded 2 >"$work/mock.log" 2>&1 &
mock_pid=$!
mock_addr=$(address_in "$work/mock.log" "listening on http://")

cat >"$work/gateway.toml" <<TOML
[server]
listen = "127.0.0.1:0"
[upstream]
regions = ["mock"]
request_timeout = "300s"
stream_idle_timeout = "60s"
forward_headers = ["accept", "content-type", "x-mock-*"]
[regions.mock]
base_url = "http://$mock_addr"
api_key_env = ["MEASURE_UPSTREAM_KEY"]
[store]
url = "memory"
[log]
filter = "warn,qwen_gateway::cli=info"
TOML

start_gateway() {
  MEASURE_UPSTREAM_KEY=sk-measure-not-a-real-key "$target/release/qwen-gateway" serve \
    --config "$work/gateway.toml" >"$work/gateway.log" 2>&1 &
  gw_pid=$!
  gw_addr=$(address_in "$work/gateway.log" "listening on http://")
}

stop_gateway() {
  kill "$gw_pid" 2>/dev/null || true
  wait "$gw_pid" 2>/dev/null || true
  gw_pid=""
}

hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$gw_pid/status"; }

start_gateway
echo "== chat with one giant upstream event in 16 KiB pieces"
for mib in 8 16; do
  for stream in false true; do
    body="{\"model\":\"qwen3-max-2026-01-23\",\"stream\":$stream,\"stream_options\":{\"include_usage\":true},\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"
    [ "$stream" = false ] && body="{\"model\":\"qwen3-max-2026-01-23\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"
    out=$(curl -s -o "$work/answer" -w '%{http_code} %{time_total}' \
      -H 'content-type: application/json' \
      -H 'x-mock-malformed-at: 4' -H 'x-mock-malformed-kind: giant' \
      -H "x-mock-pad-bytes: $(( mib * 1048576 ))" -H 'x-mock-chunk-bytes: 16384' \
      -d "$body" "http://$gw_addr/v1/chat/completions")
    if [ "$stream" = false ]; then
      verdict=$(jq -r '.usage.total_tokens // .error.code' "$work/answer")
    else
      verdict=$(grep -o '"total_tokens":[0-9]*\|"code":"[a-z_]*"' "$work/answer" | tail -1)
    fi
    echo "chat stream=$stream ${mib} MiB event: HTTP ${out% *}, ${out#* } s, $verdict"
  done
done
stop_gateway

echo "== /v1/responses with a ~10 MB body: peak RSS growth of a fresh gateway"
python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
items = [{"role": "user", "content": f"message {i}: the quick brown fox"} for i in range(165000)]
for name, model in (("aliased", "gpt-4o"), ("plain", "qwen3-max-2026-01-23")):
    with open(f"{work}/{name}.json", "w") as f:
        json.dump({"model": model, "input": items, "max_output_tokens": 16}, f, separators=(",", ":"))
PY
for name in plain aliased; do
  start_gateway
  curl -s -o /dev/null -H 'content-type: application/json' \
    -d '{"model":"gpt-4o","input":"warm up"}' "http://$gw_addr/v1/responses"
  before=$(hwm_kib)
  status=$(curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' \
    --data-binary "@$work/$name.json" "http://$gw_addr/v1/responses")
  after=$(hwm_kib)
  echo "responses $name body ($(stat -c %s "$work/$name.json") bytes): HTTP $status, VmHWM ${before} -> ${after} KiB (+$(( (after - before) / 1024 )) MiB)"
  stop_gateway
done
