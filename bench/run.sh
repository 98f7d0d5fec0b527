#!/usr/bin/env bash
# The benchmark, end to end, on loopback: builds release binaries, installs the comparison
# gateways (bench/setup.sh), starts the mock Model Studio in low-latency mode and, in front of
# it, qwen-gateway, LiteLLM's proxy and Portkey's gateway; then qwen-bench drives every scenario
# (oha for load, its own client for sequential and SSE timing), writes bench/RESULTS.md and
# bench/out/results.json, and bench/chart.py draws bench/latency.png.
#
# Usage: bench/run.sh [--quick] [--rounds N] [--no-litellm] [--no-portkey] [--profile]
#   --quick     short smoke run (< 3 minutes once built and installed)
#   --rounds N  rounds per scenario (figures are medians over rounds); default 3, 1 with --quick
#   --profile   instead of the benchmark: callgrind instruction counts per request of the
#               gateway's hot paths (bench/out/profile/), see bench/PROFILE.md
# Every run is bounded in time: each load step has a duration, each request a timeout, and
# the whole measurement a deadline (10 minutes quick, 40 full).
set -euo pipefail
trap 'echo "run.sh: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/.."
root=$PWD
quick=0 profile=0 litellm=1 portkey=1 rounds=()
cmdline="bench/run.sh${*:+ $*}"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --rounds) rounds=(--rounds "$2"); shift ;;
    --rounds=*) rounds=(--rounds "${1#*=}") ;;
    --no-litellm) litellm=0 ;;
    --no-portkey) portkey=0 ;;
    --profile) profile=1 ;;
    -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

echo "building release binaries" >&2
cargo build --release -p qwen-gateway -p mock-model-studio -p qwen-bench --bins --quiet
if [ $profile = 1 ]; then exec bench/profile.sh; fi
setup_status=0
bench/setup.sh || setup_status=$?

# 10,000 open streams need ~30,000 descriptors across client, gateway and mock.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" -ge 65536 ] 2>/dev/null || ulimit -n 65536 2>/dev/null || true
echo "open files limit: $(ulimit -n)" >&2

out=$root/bench/out
mkdir -p "$out/logs"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# wait_for FILE REGEX SECONDS → first match of REGEX in FILE.
wait_for() {
  local deadline=$((SECONDS + $3))
  while [ $SECONDS -lt $deadline ]; do
    if m=$(grep -oE "$2" "$1" 2>/dev/null | head -1) && [ -n "$m" ]; then echo "$m"; return 0; fi
    sleep 0.1
  done
  echo "timed out waiting for '$2' in $1" >&2
  tail -n 20 "$1" >&2
  return 1
}

# wait_http URL SECONDS [curl args] → 0 once URL answers 2xx.
wait_http() {
  local url=$1 deadline=$((SECONDS + $2))
  shift 2
  while [ $SECONDS -lt $deadline ]; do
    if curl -fsS -o /dev/null --max-time 2 "$@" "$url" 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  return 1
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

json_str() { python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"; }

model=qwen3-max-2026-01-23

# The mock: one event per write, no artificial delay; the suite sets per-scenario defaults
# (answer length, delay between events) through POST /_mock/defaults, so every gateway sees
# the same upstream without having to forward x-mock-* headers.
target/release/mock-model-studio --listen 127.0.0.1:0 --no-split --max-recorded 1 \
  >"$out/logs/mock.log" 2>&1 &
mock_pid=$!
pids+=($mock_pid)
mock=$(wait_for "$out/logs/mock.log" 'http://127\.0\.0\.1:[0-9]+' 15)

targets=()
add_target() { targets+=("$1"); }
add_target "{\"name\": \"direct\", \"direct\": true, \"base\": \"$mock\", \"pid\": $mock_pid}"

# qwen-gateway, as shipped (access log at info to a file), no persistent store.
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
BENCH_UPSTREAM_KEY=sk-bench target/release/qwen-gateway serve --config "$out/gw.toml" \
  >"$out/logs/qwen-gateway.log" 2>&1 &
gw_pid=$!
pids+=($gw_pid)
gw=$(wait_for "$out/logs/qwen-gateway.log" 'http://127\.0\.0\.1:[0-9]+' 15)
wait_http "$gw/healthz" 30 || { echo "qwen-gateway: /healthz did not answer" >&2; exit 1; }
# The gateway's own code: the last commit that touched it, not the bench's.
gw_version="$(git log -1 --format='%h (%cs)' -- src Cargo.toml config)"
add_target "{\"name\": \"qwen-gateway\", \"base\": \"$gw/v1\", \"pid\": $gw_pid, \"log\": \"$out/logs/qwen-gateway.log\"}"

# A bare forwarder (qwen-bench forward: hyper server + reqwest, no parsing, no log): the
# floor that one extra hop with qwen-gateway's HTTP stack costs on this machine.
target/release/qwen-bench forward --upstream "$mock" >"$out/logs/forward.log" 2>&1 &
fw_pid=$!
pids+=($fw_pid)
fw=$(wait_for "$out/logs/forward.log" 'http://127\.0\.0\.1:[0-9]+' 15)
add_target "{\"name\": \"bare forwarder\", \"base\": \"$fw/v1\", \"pid\": $fw_pid, \"chat_na\": \"a byte forwarder does not translate Chat Completions\"}"

# nginx as a plain reverse proxy with upstream keepalive: the floor of one hop in C (issue 16).
# One process (master_process off), so its RSS and CPU are read from one pid.
nginx_version=n/a
nginx_bin=$(command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true)
if [ -z "$nginx_bin" ]; then
  add_target '{"name": "nginx", "unavailable": "not installed: bench/setup.sh failed (see bench/.apt-install.log)"}'
else
  nginx_version=$("$nginx_bin" -v 2>&1 | sed 's|.*nginx/||')
  port=$(free_port)
  mkdir -p "$out/nginx"
  nofile=$(ulimit -Hn)
  [ "$nofile" = unlimited ] && nofile=65536
  cat >"$out/nginx/nginx.conf" <<NGINX
master_process off;
daemon off;
worker_rlimit_nofile $nofile;
pid $out/nginx/nginx.pid;
error_log $out/logs/nginx-error.log warn;
events { worker_connections $nofile; }
http {
  access_log off;
  client_body_temp_path $out/nginx/body;
  proxy_temp_path $out/nginx/proxy;
  upstream mock { server ${mock#http://}; keepalive 64; }
  server {
    listen 127.0.0.1:$port backlog=4096;
    location /v1/ {
      proxy_pass http://mock/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 600s;
    }
  }
}
NGINX
  "$nginx_bin" -c "$out/nginx/nginx.conf" -p "$out/nginx" >"$out/logs/nginx.log" 2>&1 &
  ng_pid=$!
  pids+=($ng_pid)
  if wait_http "http://127.0.0.1:$port/v1/responses" 15 -X POST -H 'content-type: application/json' -H 'authorization: Bearer sk-bench' \
    -d "{\"model\": \"$model\", \"input\": \"hi\"}"; then
    add_target "{\"name\": \"nginx\", \"base\": \"http://127.0.0.1:$port/v1\", \"pid\": $ng_pid, \"chat_na\": \"a plain reverse proxy does not translate Chat Completions\"}"
  else
    add_target "{\"name\": \"nginx\", \"unavailable\": $(json_str "did not start within 15 s: $(tail -n 3 "$out/logs/nginx-error.log" "$out/logs/nginx.log" 2>/dev/null | tr '\n' ' ')")}"
  fi
fi

# LiteLLM's proxy: an OpenAI-compatible provider pointed at the mock. `/v1/responses` goes to
# the mock's /responses; chat goes through LiteLLM's Responses bridge (`openai/responses/…`),
# since the mock, like qwen-gateway's upstream, speaks only the Responses API.
litellm_version=n/a
if [ $litellm = 0 ]; then
  add_target '{"name": "LiteLLM", "unavailable": "skipped (--no-litellm)"}'
elif [ ! -x bench/.venv/bin/litellm ]; then
  add_target '{"name": "LiteLLM", "unavailable": "not installed: bench/setup.sh failed (see bench/.venv-install.log)"}'
else
  litellm_version=$(bench/.venv/bin/python -c 'import importlib.metadata as m; print(m.version("litellm"))')
  workers=$(nproc)
  cat >"$out/litellm.yaml" <<YAML
model_list:
  - model_name: $model
    litellm_params:
      model: openai/$model
      api_base: $mock
      api_key: sk-bench
    model_info: &pricing  # Qwen3-Max list prices; unpriced, LiteLLM diagnoses every \$0 cost
      input_cost_per_token: 0.0000012
      output_cost_per_token: 0.000006
  - model_name: $model-chat
    litellm_params:
      model: openai/responses/$model
      api_base: $mock
      api_key: sk-bench
    model_info: *pricing
litellm_settings:
  telemetry: false
  drop_params: true
  set_verbose: false
  json_logs: false
general_settings:
  master_key: sk-bench-0c6f1e9a4d2b47d8a3e5f7091b2c4d6e  # = qwen-bench's CLIENT_KEY
  disable_spend_logs: true
  disable_error_logs: true
YAML
  port=$(free_port)
  # No network here: use the bundled model cost map instead of fetching it.
  LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_LOG=ERROR \
    bench/.venv/bin/litellm --config "$out/litellm.yaml" --host 127.0.0.1 --port "$port" \
    --num_workers "$workers" >"$out/logs/litellm.log" 2>&1 &
  ll_pid=$!
  ll_port=$port
  pids+=($ll_pid)
  # Waited for below, after Portkey has been started too: LiteLLM takes a while to import.
fi

# Portkey's gateway (Node.js, one process): routed per request by its headers.
portkey_version=n/a
pk_main=bench/node_modules/@portkey-ai/gateway/build/start-server.js
if [ $portkey = 0 ]; then
  add_target '{"name": "Portkey", "unavailable": "skipped (--no-portkey)"}'
elif [ ! -f $pk_main ]; then
  add_target '{"name": "Portkey", "unavailable": "not installed: bench/setup.sh failed (see bench/.npm-install.log)"}'
else
  portkey_version=$(node -p 'require("./bench/node_modules/@portkey-ai/gateway/package.json").version')
  port=$(free_port)
  node $pk_main --port="$port" --headless >"$out/logs/portkey.log" 2>&1 &
  pk_pid=$!
  pids+=($pk_pid)
  if wait_http "http://127.0.0.1:$port/" 30; then
    add_target "{\"name\": \"Portkey\", \"base\": \"http://127.0.0.1:$port/v1\", \"pid\": $pk_pid, \"log\": \"$out/logs/portkey.log\",
      \"headers\": {\"x-portkey-provider\": \"openai\", \"x-portkey-custom-host\": \"$mock\"},
      \"chat_na\": \"Portkey's openai provider sends /chat/completions to the upstream unchanged, and Model Studio's Responses API (the mock) has no /chat/completions; Portkey has no Chat-to-Responses bridge\"}"
  else
    add_target "{\"name\": \"Portkey\", \"unavailable\": $(json_str "did not start within 30 s: $(tail -n 3 "$out/logs/portkey.log" | tr '\n' ' ')")}"
  fi
fi

if [ -n "${ll_port:-}" ]; then
  if wait_http "http://127.0.0.1:$ll_port/health/liveliness" 120; then
    add_target "{\"name\": \"LiteLLM\", \"base\": \"http://127.0.0.1:$ll_port/v1\", \"pid\": $ll_pid, \"chat_model\": \"$model-chat\", \"log\": \"$out/logs/litellm.log\"}"
  else
    add_target "{\"name\": \"LiteLLM\", \"unavailable\": $(json_str "did not start within 120 s: $(tail -n 3 "$out/logs/litellm.log" | tr '\n' ' ')")}"
  fi
fi

oha=bench/.tools/bin/oha
[ -x $oha ] || oha=$(command -v oha || true)
if [ -z "$oha" ]; then echo "oha is not installed (bench/setup.sh failed)" >&2; exit 1; fi

{
  echo "{\"mock\": \"$mock\", \"mock_pid\": $mock_pid, \"targets\": ["
  (IFS=,; echo "${targets[*]}")
  echo "], \"versions\": {"
  echo "\"qwen-gateway\": $(json_str "$gw_version"),"
  echo "\"LiteLLM\": $(json_str "$litellm_version (proxy, $(nproc) workers)"),"
  echo "\"Portkey gateway\": $(json_str "$portkey_version (node $(node --version))"),"
  echo "\"nginx\": $(json_str "$nginx_version (reverse proxy, upstream keepalive)"),"
  echo "\"oha\": $(json_str "$($oha --version | head -1)"),"
  echo "\"rustc\": $(json_str "$(rustc --version)"),"
  echo "\"python\": $(json_str "$(bench/.venv/bin/python --version 2>&1 || python3 --version)")"
  echo "}}"
} >"$out/targets.json"
if [ $setup_status != 0 ]; then echo "setup had failures; affected targets are reported n/a" >&2; fi

quick_flag=()
[ $quick = 1 ] && quick_flag=(--quick)
deadline=2400
[ $quick = 1 ] && deadline=600
timeout --signal=INT --kill-after=10 $deadline \
  target/release/qwen-bench suite --targets "$out/targets.json" --out "$out" \
  --report bench/RESULTS.md --oha "$oha" --command "$cmdline" "${quick_flag[@]}" "${rounds[@]}" &
pids+=($!)
wait $!

if [ -x bench/.venv/bin/python ] && bench/.venv/bin/python bench/chart.py "$out/results.json" bench/latency.png; then
  echo "wrote bench/latency.png" >&2
else
  echo "no chart: matplotlib is not installed in bench/.venv" >&2
fi
