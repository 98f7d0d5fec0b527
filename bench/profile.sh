#!/usr/bin/env bash
# Instruction counts per request of qwen-gateway's hot paths, under callgrind (repeatable on a
# noisy machine, unlike wall-clock time; `perf stat -e instructions` is not supported here).
# Run through `bench/run.sh --profile` (which builds first), or directly once built.
#
# For each path the gateway runs twice under callgrind, serving N1 and then N2 requests from
# oha at concurrency 1; (total(N2) − total(N1)) / (N2 − N1) is the cost of one request with
# start-up and lazy initialisation cancelled out. Top functions come from the N2 run.
# Output: bench/out/profile/{summary.md, *.callgrind, *.top.txt}.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/out/profile
mkdir -p "$out"
oha=bench/.tools/bin/oha
[ -x $oha ] || oha=$(command -v oha)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

wait_for() { # file regex seconds
  local deadline=$((SECONDS + $3))
  while [ $SECONDS -lt $deadline ]; do
    if m=$(grep -oE "$2" "$1" 2>/dev/null | head -1) && [ -n "$m" ]; then echo "$m"; return 0; fi
    sleep 0.2
  done
  echo "timed out waiting for '$2' in $1" >&2; tail -n 20 "$1" >&2; return 1
}

target/release/mock-model-studio --listen 127.0.0.1:0 --no-split --max-recorded 1 >"$out/mock.log" 2>&1 &
pids+=($!)
mock=$(wait_for "$out/mock.log" 'http://127\.0\.0\.1:[0-9]+' 15)
cat >"$out/gw.toml" <<TOML
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

key="authorization: Bearer sk-bench-0c6f1e9a4d2b47d8a3e5f7091b2c4d6e"
model=qwen3-max-2026-01-23

# profile NAME PATH BODY MOCK_DEFAULTS N → callgrind total instructions of a gateway serving N.
profile() {
  local name=$1 path=$2 body=$3 defaults=$4 n=$5 log="$out/$1-$5.log"
  curl -fsS -o /dev/null -X POST "$mock/_mock/defaults" -d "$defaults"
  BENCH_UPSTREAM_KEY=sk-bench valgrind --tool=callgrind --callgrind-out-file="$out/$name-$n.callgrind" \
    target/release/qwen-gateway serve --config "$out/gw.toml" >"$log" 2>&1 &
  local vg=$!
  local gw
  gw=$(wait_for "$log" 'http://127\.0\.0\.1:[0-9]+' 120)
  timeout 600 $oha --no-tui -n "$n" -c 1 -m POST -H "content-type: application/json" -H "$key" \
    -d "$body" "$gw$path" >"$out/$name-$n.oha.txt"
  grep -q 'Success rate:.*100' "$out/$name-$n.oha.txt" || { echo "$name: failures, see $out/$name-$n.oha.txt" >&2; }
  kill -TERM $vg
  wait $vg || true
  grep -E '^(summary|totals):' "$out/$name-$n.callgrind" | head -1 | awk '{print $2}'
}

summary=$out/summary.md
{
  echo "| path | requests (N1 → N2) | instructions, N1 run | instructions, N2 run | instructions per request |"
  echo "|---|---|---:|---:|---:|"
} >"$summary"
run() { # name path body defaults n1 n2
  local a b
  echo "profiling $1 ($5 and $6 requests)" >&2
  a=$(profile "$1" "$2" "$3" "$4" "$5")
  b=$(profile "$1" "$2" "$3" "$4" "$6")
  echo "| $1 | $5 → $6 | $a | $b | $(( (b - a) / ($6 - $5) )) |" >>"$summary"
  callgrind_annotate --inclusive=no "$out/$1-$6.callgrind" 2>/dev/null | head -60 >"$out/$1.top.txt" || true
  callgrind_annotate --inclusive=yes "$out/$1-$6.callgrind" 2>/dev/null | head -80 >"$out/$1.inclusive.txt" || true
}

run responses-plain /v1/responses "{\"model\":\"$model\",\"input\":\"hello\"}" \
  '{"x-mock-tokens":"16"}' 200 2000
run responses-stream /v1/responses "{\"model\":\"$model\",\"input\":\"hello\",\"stream\":true}" \
  '{"x-mock-tokens":"200"}' 20 200
run chat-plain /v1/chat/completions "{\"model\":\"$model\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}" \
  '{"x-mock-tokens":"16"}' 200 2000
# Memory per held stream: heaptrack over 2,000 slow streams (one event every 1.5 s).
if command -v heaptrack >/dev/null; then
  echo "heaptrack: 2000 held streams" >&2
  curl -fsS -o /dev/null -X POST "$mock/_mock/defaults" -d '{"x-mock-tokens":"60","x-mock-delay-ms":"1500"}'
  rm -f "$out"/streams-heap.*
  BENCH_UPSTREAM_KEY=sk-bench heaptrack -o "$out/streams-heap" \
    target/release/qwen-gateway serve --config "$out/gw.toml" >"$out/streams-heap.log" 2>&1 &
  ht=$!
  gw=$(wait_for "$out/streams-heap.log" 'http://127\.0\.0\.1:[0-9]+' 60)
  gw_pid=$(pgrep -P $ht -f "qwen-gateway serve" | head -1 || true)
  target/release/qwen-bench streams --base "$gw/v1" --n 2000 --hold-secs 3 ${gw_pid:+--pid $gw_pid} \
    >"$out/streams-heap.result.txt"
  kill -TERM "${gw_pid:-$ht}" 2>/dev/null || true
  wait $ht || true
  heaptrack_print -f "$out"/streams-heap.*zst --print-peaks 1 --print-allocators 0 \
    --print-temporary 0 --print-leaks 0 --peak-limit 15 \
    >"$out/streams-heap.peaks.txt" 2>/dev/null || true
  grep -E 'peak heap memory|peak RSS' "$out/streams-heap.peaks.txt" >&2 || true
  curl -fsS -o /dev/null -X POST "$mock/_mock/defaults" -d '{}'
fi
cat "$summary"
echo "top functions: $out/*.top.txt; memory per stream: $out/streams-heap.peaks.txt" >&2
