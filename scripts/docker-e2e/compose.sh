# docker-e2e: the docker-compose runs: the single gateway with docker-compose.secrets.yml, and
# the `team` profile (Redis and two replicas), each in a scratch copy of what a user has.
# shellcheck shell=bash
# Sourced by scripts/docker-e2e.sh: functions only, nothing runs when sourced; they use the
# entry point's globals (RUN, PROJECT, UPSTREAM_KEY, ADMIN_TOKEN, ...) and the check helpers.

# A scratch copy of what a user has: the compose files, config/compose.toml, .env (from
# .env.example, filled in) and secrets/; plus an override that only adds the mock.
make_project() {
  local dir="$RUN/project-$1"
  mkdir -p "$dir/config" "$dir/secrets"
  cp docker-compose.yml docker-compose.secrets.yml "$dir/"
  cp config/compose.toml "$dir/config/"
  cat >"$dir/docker-compose.e2e.yml" <<EOF
# e2e only: the mock Model Studio as service "mock" (the region's base_url, set in .env).
services:
  mock:
    image: $BUILDER_IMAGE
    user: "65532:65532"
    read_only: true
    volumes:
      - $RUN/mock-model-studio:/usr/local/bin/mock-model-studio:ro
    command: ["mock-model-studio", "--listen", "0.0.0.0:9999", "--keys", "$UPSTREAM_KEY"]
EOF
  chmod 0600 "$dir/docker-compose.e2e.yml"
  echo "$dir"
}
# write_env DIR KEY: .env.example with the keys and the mock's URL filled in.
write_env() {
  sed -e "s|^DASHSCOPE_API_KEY=.*|DASHSCOPE_API_KEY=$2|" \
    -e "s|^QWEN_GATEWAY_ADMIN_TOKEN=.*|QWEN_GATEWAY_ADMIN_TOKEN=$ADMIN_TOKEN|" .env.example >"$1/.env"
  cat >>"$1/.env" <<EOF
QWEN_GATEWAY__REGIONS__SINGAPORE__BASE_URL=http://mock:9999
QWEN_GATEWAY__UPSTREAM__REGIONS=singapore
QWEN_GATEWAY__UPSTREAM__FORWARD_HEADERS=$FORWARD
EOF
  chmod 0600 "$1/.env"
}

# 2. docker-compose up (single gateway) with docker-compose.secrets.yml: the key from a
# secret file.
compose_single_run() {
  say "docker-compose up (single gateway) with docker-compose.secrets.yml: key from a secret file"
  P2="$(make_project single)"
  write_env "$P2" ""
  printf '%s' "$UPSTREAM_KEY" >"$P2/secrets/dashscope_api_key"
  chmod 0444 "$P2/secrets/dashscope_api_key"
  echo "-f docker-compose.yml -f docker-compose.secrets.yml -f docker-compose.e2e.yml" >"$P2/compose-files"
  dc2() { (cd "$P2" && timeout 180 docker-compose -p "$PROJECT" $(cat compose-files) "$@"); }
  t_up="$(now)"
  dc2 up -d --no-build >"$RUN/compose.log" 2>&1 || { cat "$RUN/compose.log" >&2; fail "docker-compose up"; }
  G="${PROJECT}_gateway_1"
  healthy_s="$(wait_healthy "$G" 90 "$t_up")" || fail "$G: HEALTHCHECK healthy"
  pass "$G: HEALTHCHECK healthy ($healthy_s s after docker-compose up)"
  check "$G: key read from the secret file (check: <set from file>)" \
    sh -c "cd '$P2' && timeout 30 docker-compose -p $PROJECT $(cat "$P2/compose-files") exec -T gateway qwen-gateway check 2>&1 | grep -q 'DASHSCOPE_API_KEY.*<set from file>'"
  requests_through "http://127.0.0.1:8080"
  process_checks "$G"
  check "$G: read-only root filesystem (HostConfig.ReadonlyRootfs)" \
    test "$(docker inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$G")" = true
  check "$G: writing into the root filesystem is refused" \
    sh -c "! timeout 30 docker cp '$SI/redis/docker-entrypoint.sh' '$G:/app/' >/dev/null 2>&1"
  check "$G: no capabilities, no-new-privileges" \
    test "$(proc_field "$G" CapEff):$(proc_field "$G" NoNewPrivs)" = "0000000000000000:1"
  check "$G: /tmp is a tmpfs" \
    sh -c "docker inspect -f '{{json .HostConfig.Tmpfs}}' '$G' | grep -q '\"/tmp\"'"
  drain_check "$G" "http://127.0.0.1:8080" dc2 stop gateway
  volume_checks "${PROJECT}_gateway-data"
  dc2 down -v --timeout 10 >/dev/null 2>&1
}

# 3. docker-compose --profile team up: Redis and two replicas, keys from .env.
compose_team_run() {
  say "docker-compose --profile team up: Redis and two replicas (keys from .env)"
  P3="$(make_project team)"
  write_env "$P3" "$UPSTREAM_KEY"
  echo "-f docker-compose.yml -f docker-compose.e2e.yml" >"$P3/compose-files"
  dc3() { (cd "$P3" && timeout 180 docker-compose -p "$PROJECT" $(cat compose-files) "$@"); }
  t_up="$(now)"
  dc3 --profile team up -d --no-build >"$RUN/compose.log" 2>&1 || { cat "$RUN/compose.log" >&2; fail "docker-compose --profile team up"; }
  for c in redis gateway-a gateway-b gateway; do
    healthy_s="$(wait_healthy "${PROJECT}_${c}_1" 120 "$t_up")" || fail "$c: healthy"
    pass "${PROJECT}_${c}_1: healthy ($healthy_s s after docker-compose up)"
  done
  A=http://127.0.0.1:8081
  B=http://127.0.0.1:8082
  body='{"model":"'$MODEL'","input":"Hi"}'
  check "gateway-a: /v1/responses without a team key -> 401" \
    test "$(http_code "$A/v1/responses" -H 'content-type: application/json' -d "$body")" = 401
  check "gateway-b: /admin with a wrong token -> 401" \
    test "$(http_code "$B/admin/keys" -H 'authorization: Bearer wrong')" = 401
  # The admin token and the key go to curl through files (-H @file), not its command line.
  printf 'authorization: Bearer %s\n' "$ADMIN_TOKEN" >"$RUN/admin.hdr"
  chmod 0600 "$RUN/admin.hdr"
  code="$(http_code "$A/admin/keys" -H @"$RUN/admin.hdr" -H 'content-type: application/json' -d '{"name":"e2e","models":["qwen3-*"]}')"
  check "gateway-a: POST /admin/keys -> 201" test "$code" = 201
  python3 -c 'import json,sys; print("authorization: Bearer " + json.load(open(sys.argv[1]))["key"])' "$RUN/body" >"$RUN/key.hdr"
  chmod 0600 "$RUN/key.hdr"
  rm -f "$RUN/body"
  requests_through "$B" -H @"$RUN/key.hdr"
  code="$(http_code "$A/v1/responses" -H @"$RUN/key.hdr" -H 'content-type: application/json' -d "$body")"
  check "gateway-a: POST /v1/responses with the key -> 200" test "$code" = 200
  rid="$(json_field 'd["id"]')"
  code="$(http_code "$B/v1/responses/$rid" -H @"$RUN/key.hdr")"
  check "gateway-b: GET /v1/responses/{id} of a response created through gateway-a -> 200" \
    test "$code:$(json_field 'd["id"]' 2>/dev/null)" = "200:$rid"
  code="$(http_code "$B/v1/responses" -H @"$RUN/key.hdr" -H 'content-type: application/json' \
    -d '{"model":"'$MODEL'","input":"And then?","previous_response_id":"'"$rid"'"}')"
  check "gateway-b: previous_response_id of gateway-a's response -> 200" test "$code" = 200
  # Usage booked by both replicas, read through either (written in the background).
  usage_ok=""
  for ((i = 0; i < 20; i++)); do
    code="$(http_code "$A/admin/usage" -H @"$RUN/admin.hdr")"
    if [ "$code" = 200 ] && python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["data"]; sys.exit(0 if sum(r["requests"] for r in d if r.get("key_name") == "e2e") >= 6 else 1)' "$RUN/body"; then
      usage_ok=1
      break
    fi
    sleep 0.5
  done
  check "gateway-a: /admin/usage counts the key's requests made through both replicas" test -n "$usage_ok"
  process_checks "${PROJECT}_gateway-a_1"
  t0=$SECONDS
  dc3 --profile team stop >/dev/null 2>&1
  stop_s=$((SECONDS - t0))
  for c in gateway-a gateway-b gateway redis; do
    check "${PROJECT}_${c}_1: exit status 0 after docker-compose stop" \
      test "$(docker inspect -f '{{.State.ExitCode}}' "${PROJECT}_${c}_1")" = 0
  done
  check "docker-compose --profile team stop took ${stop_s}s (< ${COMPOSE_STOP_PERIOD}s)" test "$stop_s" -lt "$COMPOSE_STOP_PERIOD"
  dc3 --profile team down -v --timeout 10 >/dev/null 2>&1
}
