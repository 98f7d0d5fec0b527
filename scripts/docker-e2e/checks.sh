# docker-e2e: the check helpers (say, pass, fail, figure, check; curl, health, process and
# volume checks, drain_check) and the checks of the single-container run (docker run).
# shellcheck shell=bash
# Sourced by scripts/docker-e2e.sh: functions only, nothing runs when sourced; they use the
# entry point's globals (RUN, MODEL, PASSED, FAILED, FIGURES, ...).

say() { echo "== $*"; }
pass() { PASSED=$((PASSED + 1)); echo "  ok: $*"; }
fail() {
  FAILED=$((FAILED + 1))
  echo "  FAIL: $*" >&2
  exit 1
}
figure() { FIGURES+=("$1"); echo "  figure: $1"; }
# check DESCRIPTION COMMAND...: the command must succeed.
check() {
  local what="$1"
  shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}

# curl helpers: bounded, never print request headers.
# http_code URL [curl args...] -> prints the status code; body in $RUN/body
http_code() {
  local url="$1"
  shift
  curl -sS -m 30 -o "$RUN/body" -w '%{http_code}' "$@" "$url" || echo 000
}
json_field() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, {"d": d}))' "$RUN/body" "$1"; }

# body_has CODE FIRST_PATTERN LAST_LINE_PATTERN: status 200, the body has FIRST_PATTERN, and
# its last non-empty line matches LAST_LINE_PATTERN (the stream's final frame).
body_has() {
  test "$1" = 200 && grep -q -- "$2" "$RUN/body" && grep -v '^$' "$RUN/body" | tail -n 1 | grep -q -- "$3"
}

# requests_through BASE [auth header args...]: the API through a running gateway.
requests_through() {
  local base="$1"
  shift
  local code
  code="$(http_code "$base/healthz")"
  check "GET /healthz -> 200" test "$code" = 200
  code="$(http_code "$base/v1/responses" "$@" -H 'content-type: application/json' \
    -d "{\"model\":\"$MODEL\",\"input\":\"Hi\"}")"
  check "POST /v1/responses -> 200, a completed response" \
    test "$code:$(json_field 'd["status"]' 2>/dev/null)" = 200:completed
  code="$(http_code "$base/v1/responses" "$@" -H 'content-type: application/json' \
    -d "{\"model\":\"$MODEL\",\"input\":\"Hi\",\"stream\":true}")"
  check "POST /v1/responses stream -> 200, ends with response.completed" \
    body_has "$code" '"type":"response.completed"' '"type":"response.completed"'
  code="$(http_code "$base/v1/chat/completions" "$@" -H 'content-type: application/json' \
    -d "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}")"
  check "POST /v1/chat/completions -> 200, an assistant message" \
    test "$code:$(json_field 'd["choices"][0]["message"]["role"]' 2>/dev/null)" = 200:assistant
  code="$(http_code "$base/v1/chat/completions" "$@" -H 'content-type: application/json' \
    -d "{\"model\":\"gpt-4o\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}")"
  check "POST /v1/chat/completions stream -> 200, ends with [DONE]" \
    body_has "$code" '"finish_reason":"stop"' '^data: \[DONE\]$'
}

now() { date +%s.%N; }
# wait_healthy CONTAINER MAX_S T0 -> prints the seconds from T0 (a `now`) until Docker's
# HEALTHCHECK says healthy (fails on unhealthy, exit, or MAX_S from T0).
wait_healthy() {
  local c="$1" max="$2" t0="$3" status
  while :; do
    status="$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$c" 2>/dev/null || echo gone)"
    case "$status" in
      healthy) break ;;
      unhealthy | exited | dead | gone) echo "$c: $status" >&2; return 1 ;;
    esac
    if awk -v a="$t0" -v b="$(date +%s.%N)" -v m="$max" 'BEGIN { exit !(b - a > m) }'; then
      echo "$c: not healthy after ${max}s ($status)" >&2
      return 1
    fi
    sleep 0.25
  done
  awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'
}

# proc_field CONTAINER FIELD: a line of /proc/PID/status of the container's main process.
proc_field() {
  local pid
  pid="$(docker inspect -f '{{.State.Pid}}' "$1")"
  awk -v f="$2:" '$1 == f { $1 = ""; sub(/^ /, ""); print }' "/proc/$pid/status"
}

# helper: a throwaway container with a shell (the builder image, real or stand-in).
helper() { timeout 60 docker run --rm --network none "$@"; }

# volume_checks VOLUME: /data owned by 65532, the SQLite database in it owner-only.
volume_checks() {
  local vol="$1" out
  out="$(helper -v "$vol:/data:ro" "$BUILDER_IMAGE" sh -c \
    'stat -c "%u:%g %a" /data; stat -c "%u:%g %a" /data/qwen-gateway.db; head -c 15 /data/qwen-gateway.db; echo')"
  check "volume $vol: /data owned by 65532:65532" test "$(sed -n 1p <<<"$out" | cut -d' ' -f1)" = 65532:65532
  check "volume $vol: qwen-gateway.db owned by 65532, mode 600" test "$(sed -n 2p <<<"$out")" = "65532:65532 600"
  check "volume $vol: qwen-gateway.db is a SQLite database" test "$(sed -n 3p <<<"$out")" = "SQLite format 3"
}

# process_checks CONTAINER: non-root, no capabilities, RSS figure.
process_checks() {
  local c="$1"
  check "$c: process runs as uid/gid 65532" \
    test "$(proc_field "$c" Uid | tr -s ' \t' ' '):$(proc_field "$c" Gid | tr -s ' \t' ' ')" = "65532 65532 65532 65532:65532 65532 65532 65532"
}

# drain_check CONTAINER BASE STOP_COMMAND...: a stream in flight when the container is
# stopped ends normally, the stop takes less than the compose stop period, exit status 0.
drain_check() {
  local c="$1" base="$2"
  shift 2
  curl -sS -N -m 60 -o "$RUN/drain.out" -H 'content-type: application/json' \
    -H 'x-mock-tokens: 15' -H 'x-mock-delay-ms: 200' \
    -d "{\"model\":\"$MODEL\",\"input\":\"Hi\",\"stream\":true}" "$base/v1/responses" &
  local curl_pid=$! t0 stop_s
  sleep 1
  t0=$(date +%s.%N)
  "$@" >/dev/null 2>&1
  stop_s="$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
  wait "$curl_pid" || true
  check "$c: stream in flight at stop ends with response.completed (drained)" \
    grep -q '"type":"response.completed"' "$RUN/drain.out"
  check "$c: no gateway_shutting_down cut" sh -c "! grep -q gateway_shutting_down '$RUN/drain.out'"
  check "$c: exit status 0 after stop" test "$(docker inspect -f '{{.State.ExitCode}}' "$c")" = 0
  check "$c: stopped in ${stop_s}s (< ${COMPOSE_STOP_PERIOD}s stop period)" \
    awk -v s="$stop_s" -v m="$COMPOSE_STOP_PERIOD" 'BEGIN { exit !(s < m) }'
  figure "$c: docker stop with a 3 s stream in flight: $stop_s s"
}

wait_mock() {
  local c="$1" i
  for ((i = 0; i < 100; i++)); do
    docker logs "$c" 2>/dev/null | grep -q 'listening on' && return 0
    sleep 0.1
  done
  echo "mock $c did not start" >&2
  return 1
}

port_free() { ! ss -Hltn "sport = :$1" | grep -q .; }

# 1. docker run: the image as the Dockerfile's usage line runs it, the mock in its own
# container.
single_container_run() {
  say "docker run (the Dockerfile's own usage line), mock in its own container"
  docker network create qgw-e2e-net >/dev/null
  docker run -d --name qgw-e2e-mock --network qgw-e2e-net --read-only --user 65532:65532 \
    -v "$RUN/mock-model-studio:/usr/local/bin/mock-model-studio:ro" "$BUILDER_IMAGE" \
    mock-model-studio --listen 0.0.0.0:9999 --keys "$UPSTREAM_KEY" >/dev/null
  wait_mock qgw-e2e-mock
  export DASHSCOPE_API_KEY="$UPSTREAM_KEY"
  t_up="$(now)"
  docker run -d --name qgw-e2e-run --network qgw-e2e-net -p 127.0.0.1::8080 \
    -e DASHSCOPE_API_KEY -e QWEN_GATEWAY__REGIONS__SINGAPORE__BASE_URL=http://qgw-e2e-mock:9999 \
    -e QWEN_GATEWAY__UPSTREAM__REGIONS=singapore -e QWEN_GATEWAY__UPSTREAM__FORWARD_HEADERS="$FORWARD" \
    -v qgw-e2e-data:/data "$GATEWAY_IMAGE" >/dev/null
  unset DASHSCOPE_API_KEY
  healthy_s="$(wait_healthy qgw-e2e-run 90 "$t_up")" || fail "qgw-e2e-run: HEALTHCHECK healthy"
  pass "qgw-e2e-run: HEALTHCHECK healthy"
  figure "docker run to healthy (HEALTHCHECK, 15 s interval): $healthy_s s"
  RUN_PORT="$(docker port qgw-e2e-run 8080/tcp | head -n1 | sed 's/.*://')"
  requests_through "http://127.0.0.1:$RUN_PORT"
  process_checks qgw-e2e-run
  rss="$(proc_field qgw-e2e-run VmRSS)"
  figure "RSS of the gateway in the container after these requests: $rss"
  drain_check qgw-e2e-run "http://127.0.0.1:$RUN_PORT" timeout 60 docker stop -t 40 qgw-e2e-run
  volume_checks qgw-e2e-data
  docker rm -f qgw-e2e-run qgw-e2e-mock >/dev/null
  docker volume rm qgw-e2e-data >/dev/null
  docker network rm qgw-e2e-net >/dev/null
}
