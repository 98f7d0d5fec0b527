#!/usr/bin/env bash
# Soak test: the real gateway in front of the real mock Model Studio, both on loopback, under
# mixed plain/streaming Responses and Chat traffic with faults sprinkled in (examples/soak.rs),
# while the gateway's memory (VmRSS) and open file descriptors are sampled every second.
#
#   scripts/soak.sh [--minutes N | --seconds N] [--concurrency N] [--out FILE.csv]
#
# Default: 10 minutes. Fails when the driver saw a wrong answer, or when the average of the
# last third of the samples exceeds the first third's by more than 20% + 5 MiB of RSS or
# 20 file descriptors (a leak), or, in runs of 5 minutes or more, when RSS still climbs by
# more than 50 KiB a minute over the last two thirds (least squares: a slow leak that the
# thirds would only catch after hours). Writes the samples to a CSV (default
# target/soak/soak.csv) and prints start, peak, end and that slope.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=600
concurrency=8
out=target/soak/soak.csv
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) seconds=$(( $2 * 60 )); shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --concurrency) concurrency=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: $0 [--minutes N | --seconds N] [--concurrency N] [--out FILE.csv]" >&2; exit 2 ;;
  esac
done

echo "== soak: building"
cargo build --quiet --bins --example soak -p qwen-gateway -p mock-model-studio

work=$(mktemp -d)
mock_pid=""
gw_pid=""
sampler_pid=""
cleanup() {
  for pid in "$sampler_pid" "$gw_pid" "$mock_pid"; do
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

target/debug/mock-model-studio --listen 127.0.0.1:0 --max-recorded 200 >"$work/mock.log" 2>&1 &
mock_pid=$!
mock_addr=$(address_in "$work/mock.log" "listening on http://")

cat >"$work/gateway.toml" <<TOML
[server]
listen = "127.0.0.1:0"
[upstream]
regions = ["soak"]
connect_timeout = "1s"
first_byte_timeout = "3s"               # generous: debug builds on a shared 2-core machine
stream_idle_timeout = "3s"
request_timeout = "10s"
hold_first_event = "200ms"
breaker_threshold = 1000000
rate_limit_cooldown = "0s"              # a 429 must not make other soak requests fail
forward_headers = ["accept", "content-type", "user-agent", "idempotency-key", "openai-beta", "x-mock-*"]   # the mock's fault controls
[regions.soak]
base_url = "http://$mock_addr"
api_key_env = ["SOAK_UPSTREAM_KEY"]
[store]
# The memory store: a file store's page cache (SQLite: up to 2 MiB) warms as the database
# grows during the run, which the growth checks below cannot tell from a leak.
url = "memory"
[log]
filter = "warn,qwen_gateway::cli=info"   # the listening line, not one line per request
TOML
SOAK_UPSTREAM_KEY=sk-soak-not-a-real-key target/debug/qwen-gateway serve --config "$work/gateway.toml" \
  >"$work/gateway.log" 2>&1 &
gw_pid=$!
gw_addr=""
for _ in $(seq 200); do
  gw_addr=$(grep -o 'listening on http://[0-9.:]*' "$work/gateway.log" 2>/dev/null | head -1 | sed 's|listening on http://||') || true
  [ -n "$gw_addr" ] && break
  sleep 0.1
done
if [ -z "$gw_addr" ]; then
  echo "the gateway did not start:" >&2
  cat "$work/gateway.log" >&2
  exit 1
fi
echo "== soak: gateway pid $gw_pid on $gw_addr, mock on $mock_addr, ${seconds}s, concurrency $concurrency"

mkdir -p "$(dirname "$out")"
echo "elapsed_s,rss_kb,fds" >"$out"
(
  start=$(date +%s)
  while kill -0 "$gw_pid" 2>/dev/null; do
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$gw_pid/status" 2>/dev/null || echo "")
    fds=$(ls "/proc/$gw_pid/fd" 2>/dev/null | wc -l)
    [ -n "$rss" ] && echo "$(( $(date +%s) - start )),$rss,$fds" >>"$out"
    sleep 1
  done
) &
sampler_pid=$!

driver_status=0
target/debug/examples/soak --gateway "http://$gw_addr" --seconds "$seconds" --concurrency "$concurrency" \
  || driver_status=$?
sleep 1
kill "$sampler_pid" 2>/dev/null || true
wait "$sampler_pid" 2>/dev/null || true
sampler_pid=""

if ! kill -0 "$gw_pid" 2>/dev/null; then
  echo "FAIL: the gateway died during the soak:" >&2
  tail -50 "$work/gateway.log" >&2
  exit 1
fi

# Thirds of the samples: first vs last.
verdict=$(awk -F, 'NR > 1 { n++; t[n] = $1; rss[n] = $2; fds[n] = $3 }
  END {
    if (n < 6) { print "FAIL too few samples (" n ")"; exit }
    third = int(n / 3)
    for (i = 1; i <= third; i++) { r1 += rss[i]; f1 += fds[i] }
    for (i = n - third + 1; i <= n; i++) { r3 += rss[i]; f3 += fds[i] }
    r1 /= third; r3 /= third; f1 /= third; f3 /= third
    peak = 0; for (i = 1; i <= n; i++) if (rss[i] > peak) peak = rss[i]
    # Least-squares slope of RSS (KiB per minute) over the last two thirds.
    for (i = third + 1; i <= n; i++) { m++; sx += t[i]; sy += rss[i]; sxx += t[i] * t[i]; sxy += t[i] * rss[i] }
    d = m * sxx - sx * sx
    slope = (d > 0) ? 60 * (m * sxy - sx * sy) / d : 0
    printf "samples %d; RSS start %.1f MiB, peak %.1f MiB, end %.1f MiB; first-third avg %.1f MiB, last-third avg %.1f MiB; slope over the last two thirds %.1f KiB/min; fds first-third avg %.1f, last-third avg %.1f, end %d\n",
      n, rss[1] / 1024, peak / 1024, rss[n] / 1024, r1 / 1024, r3 / 1024, slope, f1, f3, fds[n]
    if (r3 > r1 * 1.2 + 5120) print "FAIL memory grew"
    else if (f3 > f1 + 20) print "FAIL file descriptors grew"
    else if (t[n] >= 300 && slope > 50) print "FAIL memory still climbing"
    else print "OK"
  }' "$out")
echo "$verdict" | sed 's/^/== soak: /'
echo "== soak: samples in $out"
if [ "$driver_status" -ne 0 ]; then
  echo "FAIL: the driver saw wrong answers (see WRONG lines above)" >&2
  exit 1
fi
case "$verdict" in
  *FAIL*) echo "FAIL: $verdict" >&2; exit 1 ;;
esac
echo "== soak passed"
