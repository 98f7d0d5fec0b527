#!/usr/bin/env bash
# Docker end-to-end test: builds the project's real Dockerfile with a real engine and runs
# the image and the compose files against the mock Model Studio (docs/deploy.md, "What is
# verified, and how").
#
#   scripts/docker-e2e.sh            # as root; CI runs it from .ci/run after scripts/test.sh
#
# - Installs Debian's docker.io (20.10: dockerd, containerd, runc) and docker-compose (1.29)
#   when missing, and starts its own containerd and dockerd on a private data root; both are
#   stopped by PID at the end, whatever happens.
# - Base images: the real ones when present or pullable; otherwise local stand-ins with the
#   same names, built from Debian's mirror (debootstrap), cached in the data root by a hash
#   of their recipe and rebuilt only when it changes:
#     rust:RUST_VERSION-slim-bookworm       bookworm + gcc, libc6-dev, CA certificates (with
#                                           this host's: TLS may pass an intercepting proxy),
#                                           Debian's rustc-web/cargo-web
#     gcr.io/distroless/cc-debian12:nonroot FROM scratch: glibc's ld.so, libc, libm,
#                                           libgcc_s, CA bundle, /etc/passwd with nonroot
#                                           (65532), /tmp
#     redis:REDIS_TAG                       bookworm + Debian's redis-server
# - Builds the Dockerfile unchanged (BuildKit; the cargo cache mounts live in the data root).
# - Runs the image with `docker run`, then docker-compose.yml with the secrets override, then
#   the `team` profile, and checks what a user relies on (see the check lines it prints).
#
# Environment:
#   QWEN_E2E_DOCKER_ROOT  data root (images, build cache); default
#                         /var/cache/qwen-gateway-docker-e2e, kept between runs
#   QWEN_E2E_BASE_IMAGES  auto (default: real when present or pullable, else stand-ins),
#                         standin (never pull), real (pull, fail if that fails)
#   QWEN_E2E_MOCK_BIN     mock-model-studio binary (glibc, bookworm-compatible); default
#                         ${CARGO_TARGET_DIR:-target}/debug/mock-model-studio, built if missing
#   QWEN_E2E_KEEP_IMAGE=1 keep qwen-gateway:local afterwards (it is kept anyway; dangling
#                         older builds are pruned)
#
# Never prints a key or the admin token. Needs the host ports 127.0.0.1:8080, 8081 and 8082
# free (the compose files publish them).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"

RUST_VERSION="$(sed -n 's/^ARG RUST_VERSION=//p' Dockerfile)"
BUILDER_IMAGE="rust:${RUST_VERSION}-slim-bookworm"
RUNTIME_IMAGE="$(sed -n 's/^FROM \(gcr\.io[^ ]*\).*/\1/p' Dockerfile)"
REDIS_IMAGE="$(sed -n 's/^ *image: \(redis:[^ ]*\)$/\1/p' docker-compose.yml)"
GATEWAY_IMAGE="$(sed -n 's/^ *image: \(qwen-gateway:[^ ]*\)$/\1/p' docker-compose.yml)"
[ -n "$RUST_VERSION" ] && [ -n "$RUNTIME_IMAGE" ] && [ -n "$REDIS_IMAGE" ] && [ -n "$GATEWAY_IMAGE" ] || {
  echo "docker-e2e: cannot read the image names from Dockerfile/docker-compose.yml" >&2
  exit 1
}

DATA_ROOT="${QWEN_E2E_DOCKER_ROOT:-/var/cache/qwen-gateway-docker-e2e}"
BASE_MODE="${QWEN_E2E_BASE_IMAGES:-auto}"
PROJECT=qgw-e2e
STANDIN_LABEL=org.qwen-gateway.e2e.recipe
COMPOSE_STOP_PERIOD="$(sed -n 's/^ *stop_grace_period: *\([0-9]*\)s$/\1/p' docker-compose.yml)"

PASSED=0
FAILED=0
FIGURES=()
T_START=$SECONDS

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

if [ "$(id -u)" -ne 0 ]; then
  echo "docker-e2e: needs root (it starts its own dockerd); CI runs as root" >&2
  exit 1
fi

# --- engine -------------------------------------------------------------------------------

if [ ! -x /usr/bin/docker ] || ! command -v dockerd >/dev/null || ! command -v containerd >/dev/null \
  || ! command -v docker-compose >/dev/null || ! command -v debootstrap >/dev/null; then
  say "installing docker.io, docker-compose, debootstrap (Debian)"
  # policy-rc.d keeps the package from starting a system dockerd on /var/lib/docker.
  policy_added=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    policy_added=1
  fi
  env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    docker.io docker-compose debootstrap >/dev/null
  if [ -n "$policy_added" ]; then rm -f /usr/sbin/policy-rc.d; fi
fi

RUN="$(mktemp -d /tmp/qgw-e2e.XXXXXX)"
chmod 0755 "$RUN"
mkdir -p "$RUN/bin" "$DATA_ROOT"
# Debian's 20.10 CLI for everything (the machine's own `docker` may be another version
# without buildx); docker-compose finds it on PATH too.
ln -s /usr/bin/docker "$RUN/bin/docker"
export PATH="$RUN/bin:$PATH"
export DOCKER_HOST="unix://$RUN/docker.sock"
export DOCKER_BUILDKIT=1
unset DOCKER_CONTEXT DOCKER_CONFIG DOCKER_TLS_VERIFY DOCKER_CERT_PATH COMPOSE_FILE COMPOSE_PROJECT_NAME
export DOCKER_CONFIG="$RUN/docker-config"
mkdir -p "$DOCKER_CONFIG"

CONTAINERD_PID=""
DOCKERD_PID=""
DOCKER0_EXISTED=""
if ip link show docker0 >/dev/null 2>&1; then DOCKER0_EXISTED=1; fi

docker_up() { [ -n "$DOCKERD_PID" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; }

# Waits up to $1 seconds for process $2 to exit; kills it after that.
stop_pid() {
  local wait_s="$1" pid="$2" name="$3" i
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < wait_s * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  echo "docker-e2e: $name (pid $pid) did not stop in ${wait_s}s; killing it" >&2
  kill -KILL "$pid" 2>/dev/null || true
  sleep 0.5
}

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  if [ "$rc" -ne 0 ]; then
    echo "docker-e2e: $PASSED passed, $((FAILED > 0 ? FAILED : 1)) failed"
    echo "docker-e2e: failed (exit $rc); diagnostics:" >&2
    if docker_up; then
      timeout 20 docker ps -a --format '{{.Names}} {{.Status}}' >&2
      for c in $(timeout 20 docker ps -aq 2>/dev/null); do
        echo "--- logs of $(timeout 10 docker inspect -f '{{.Name}}' "$c")" >&2
        timeout 10 docker logs --tail 30 "$c" 2>&1 | cut -c1-400 >&2
      done
    fi
    [ -f "$RUN/dockerd.log" ] && { echo "--- dockerd.log (tail)" >&2; tail -n 15 "$RUN/dockerd.log" >&2; }
  fi
  if docker_up; then
    for f in "$RUN"/project-*/; do
      [ -d "$f" ] && (cd "$f" && timeout 90 docker-compose -p "$PROJECT" --profile team \
        $(cat compose-files 2>/dev/null) down -v --remove-orphans --timeout 10 >/dev/null 2>&1)
    done
    timeout 60 docker rm -f qgw-e2e-run qgw-e2e-mock >/dev/null 2>&1
    timeout 30 docker volume rm qgw-e2e-data >/dev/null 2>&1
    timeout 30 docker network rm qgw-e2e-net >/dev/null 2>&1
    # Older builds of qwen-gateway:local and their build stages; the tagged images and the
    # build cache (cargo registry and target mounts) stay.
    timeout 120 docker image prune -f >/dev/null 2>&1
  fi
  stop_pid 30 "$DOCKERD_PID" dockerd
  stop_pid 20 "$CONTAINERD_PID" containerd
  # Shims of our containerd (none once every container is gone), by PID.
  local p
  for p in /proc/[0-9]*; do
    if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF -- "$RUN/containerd.sock"; then
      kill -KILL "${p#/proc/}" 2>/dev/null
    fi
  done
  # Mounts left under our directories (network namespaces, overlays of a killed daemon).
  awk -v run="$RUN" -v root="$DATA_ROOT" 'index($2, run) == 1 || index($2, root) == 1 {print $2}' \
    /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
  if [ -z "$DOCKER0_EXISTED" ] && ip link show docker0 >/dev/null 2>&1; then
    ip link delete docker0 2>/dev/null
  fi
  rm -rf "$RUN"
  if [ "$rc" -eq 0 ]; then echo "docker-e2e: engine stopped, $RUN removed"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "starting containerd and dockerd (data root $DATA_ROOT)"
cat >"$RUN/containerd.toml" <<EOF
version = 2
root = "$DATA_ROOT/containerd"
state = "$RUN/containerd"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$RUN/containerd.sock"
EOF
# nice 19: the build and the containers yield to anything else on the machine.
nice -n 19 containerd --config "$RUN/containerd.toml" --log-level warn >"$RUN/containerd.log" 2>&1 &
CONTAINERD_PID=$!
for ((i = 0; i < 300; i++)); do
  [ -S "$RUN/containerd.sock" ] && break
  kill -0 "$CONTAINERD_PID" 2>/dev/null || { cat "$RUN/containerd.log" >&2; exit 1; }
  sleep 0.1
done
[ -S "$RUN/containerd.sock" ] || { echo "containerd did not start in 30 s" >&2; exit 1; }
nice -n 19 dockerd --data-root "$DATA_ROOT/docker" --exec-root "$RUN/exec" \
  --pidfile "$RUN/dockerd.pid" -H "$DOCKER_HOST" --containerd "$RUN/containerd.sock" \
  --log-level warn >"$RUN/dockerd.log" 2>&1 &
DOCKERD_PID=$!
for ((i = 0; i < 600; i++)); do
  timeout 5 docker version >/dev/null 2>&1 && break
  kill -0 "$DOCKERD_PID" 2>/dev/null || { tail -n 20 "$RUN/dockerd.log" >&2; exit 1; }
  sleep 0.1
done
timeout 5 docker version >/dev/null 2>&1 || { echo "dockerd did not answer in 60 s" >&2; exit 1; }
echo "  engine $(docker version -f '{{.Server.Version}}'), compose $(docker-compose version --short)"

# --- base images --------------------------------------------------------------------------

REGISTRY=""  # "", yes or no: learnt from the first pull
image_label() { docker image inspect -f "{{ index .Config.Labels \"$STANDIN_LABEL\" }}" "$1" 2>/dev/null || true; }
have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# ensure_image NAME HASH BUILD_FUNCTION: the real image when present (no stand-in label) or
# pullable; else the stand-in built by BUILD_FUNCTION, reused while its recipe hash matches.
ensure_image() {
  local name="$1" hash="$2" build="$3" label
  if have_image "$name"; then
    label="$(image_label "$name")"
    if [ -z "$label" ] || [ "$label" = "<no value>" ]; then
      echo "  $name: real image (present)"
      return 0
    fi
    if [ "$label" = "$hash" ] && [ "$BASE_MODE" != real ]; then
      echo "  $name: stand-in (cached, recipe $hash)"
      return 0
    fi
  fi
  if [ "$BASE_MODE" != standin ] && [ "$REGISTRY" != no ]; then
    if timeout 900 docker pull -q "$name" >"$RUN/pull.log" 2>&1; then
      REGISTRY=yes
      echo "  $name: real image (pulled)"
      return 0
    fi
    REGISTRY=no
    echo "  $name: no registry ($(head -c 160 "$RUN/pull.log" | tr '\n' ' '))"
    [ "$BASE_MODE" = real ] && { echo "QWEN_E2E_BASE_IMAGES=real but $name cannot be pulled" >&2; exit 1; }
  fi
  local t0=$SECONDS
  "$build" "$name" "$hash"
  echo "  $name: stand-in built in $((SECONDS - t0)) s (recipe $hash)"
}

hash_of() { cat "$@" | sha256sum | cut -c1-16; }

# Stand-in recipes, written out so that their hashes cover every input.
SI="$RUN/standin"
mkdir -p "$SI/base" "$SI/builder" "$SI/runtime" "$SI/redis"
cat >"$SI/base/recipe" <<'EOF'
debootstrap --variant=minbase bookworm http://deb.debian.org/debian
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
BASE_HASH="$(hash_of "$SI/base/recipe")"
BASE_IMAGE="qwen-e2e/debian:bookworm-$BASE_HASH"

build_base() {
  local name="$1" hash="$2" rootfs="$RUN/rootfs"
  echo "  debootstrap --variant=minbase bookworm (Debian's mirror)"
  debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >"$RUN/debootstrap.log" 2>&1 \
    || { tail -n 20 "$RUN/debootstrap.log" >&2; exit 1; }
  sed -n '2,$p' "$SI/base/recipe" >"$rootfs/etc/apt/sources.list"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar --numeric-owner -C "$rootfs" -c . | docker import \
    -c "LABEL $STANDIN_LABEL=$hash" -c 'CMD ["bash"]' - "$name" >/dev/null
  rm -rf "$rootfs"
}

# The builder stand-in trusts this host's CA certificates, as a company base image would
# behind a TLS-inspecting proxy: cargo downloads crates inside the build.
cp /etc/ssl/certs/ca-certificates.crt "$SI/builder/host-ca-certificates.crt"
cat >"$SI/builder/Dockerfile" <<EOF
FROM $BASE_IMAGE
RUN apt-get update -qq \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \\
      gcc libc6-dev ca-certificates rustc-web cargo-web >/dev/null \\
 && rm -rf /var/lib/apt/lists/*
COPY host-ca-certificates.crt /usr/local/share/ca-certificates/host-ca-certificates.crt
RUN update-ca-certificates >/dev/null 2>&1
# As in the official image: CARGO_HOME is /usr/local/cargo (the Dockerfile's cache mount).
ENV CARGO_HOME=/usr/local/cargo \\
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
EOF

cat >"$SI/runtime/Dockerfile" <<EOF
FROM $BASE_IMAGE AS rootfs
RUN apt-get update -qq \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ca-certificates >/dev/null \\
 && rm -rf /var/lib/apt/lists/* \\
 && mkdir -p /out/etc/ssl/certs /out/lib/x86_64-linux-gnu /out/lib64 /out/tmp /out/home/nonroot \\
 && cp -L /lib64/ld-linux-x86-64.so.2 /out/lib64/ \\
 && cp -L /lib/x86_64-linux-gnu/libc.so.6 /lib/x86_64-linux-gnu/libm.so.6 \\
          /lib/x86_64-linux-gnu/libgcc_s.so.1 /out/lib/x86_64-linux-gnu/ \\
 && cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/ \\
 && printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >/out/etc/passwd \\
 && printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >/out/etc/group \\
 && chmod 1777 /out/tmp && chown 65532:65532 /out/home/nonroot
FROM scratch
COPY --from=rootfs /out/ /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532
WORKDIR /home/nonroot
EOF

# The official image is built with protected mode off; Debian's binary needs the flag.
cat >"$SI/redis/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = redis-server ]; then
  shift
  set -- redis-server "$@" --protected-mode no
fi
exec "$@"
EOF
chmod 0755 "$SI/redis/docker-entrypoint.sh"
cat >"$SI/redis/Dockerfile" <<EOF
FROM $BASE_IMAGE
RUN apt-get update -qq \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null \\
 && rm -rf /var/lib/apt/lists/* \\
 && mkdir -p /data && chown redis:redis /data
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
VOLUME /data
WORKDIR /data
USER redis
EXPOSE 6379
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["redis-server"]
EOF

build_standin() {
  local name="$1" hash="$2" dir="$3"
  timeout 1200 docker build --progress=plain --label "$STANDIN_LABEL=$hash" -t "$name" "$dir" \
    >"$RUN/standin-build.log" 2>&1 || { tail -n 30 "$RUN/standin-build.log" >&2; exit 1; }
}
build_builder() { build_standin "$1" "$2" "$SI/builder"; }
build_runtime() { build_standin "$1" "$2" "$SI/runtime"; }
build_redis() { build_standin "$1" "$2" "$SI/redis"; }

say "base images"
T_BASE=$SECONDS
need_base() {
  # The stand-ins start from the Debian base; import it once.
  ensure_base_once() {
    if [ "$(image_label "$BASE_IMAGE")" != "$BASE_HASH" ]; then
      local t0=$SECONDS
      build_base "$BASE_IMAGE" "$BASE_HASH"
      echo "  $BASE_IMAGE: built in $((SECONDS - t0)) s"
    fi
  }
  ensure_base_once
}
# A stand-in's hash covers its base's too.
BUILDER_HASH="$(hash_of "$SI/base/recipe" "$SI/builder/Dockerfile" "$SI/builder/host-ca-certificates.crt")"
RUNTIME_HASH="$(hash_of "$SI/base/recipe" "$SI/runtime/Dockerfile")"
REDIS_HASH="$(hash_of "$SI/base/recipe" "$SI/redis/Dockerfile" "$SI/redis/docker-entrypoint.sh")"
build_builder_with_base() { need_base; build_builder "$@"; }
build_runtime_with_base() { need_base; build_runtime "$@"; }
build_redis_with_base() { need_base; build_redis "$@"; }
ensure_image "$BUILDER_IMAGE" "$BUILDER_HASH" build_builder_with_base
ensure_image "$RUNTIME_IMAGE" "$RUNTIME_HASH" build_runtime_with_base
ensure_image "$REDIS_IMAGE" "$REDIS_HASH" build_redis_with_base
# Debian bases of older recipes (their stand-ins were replaced above).
for img in $(docker image ls --format '{{.Repository}}:{{.Tag}}' qwen-e2e/debian); do
  [ "$img" = "$BASE_IMAGE" ] || docker image rm "$img" >/dev/null 2>&1 || true
done
figure "base images ready in $((SECONDS - T_BASE)) s"

# --- the project's image ------------------------------------------------------------------

say "docker build -t $GATEWAY_IMAGE . (the project's Dockerfile, BuildKit)"
t0=$SECONDS
if ! timeout 2400 docker build --progress=plain -t "$GATEWAY_IMAGE" "$REPO" >"$RUN/build.log" 2>&1; then
  tail -n 40 "$RUN/build.log" >&2
  fail "the Dockerfile builds"
fi
BUILD_S=$((SECONDS - t0))
pass "the Dockerfile builds ($BUILD_S s)"
figure "image build: $BUILD_S s"
IMAGE_BYTES="$(docker image inspect -f '{{.Size}}' "$GATEWAY_IMAGE")"
RUNTIME_BYTES="$(docker image inspect -f '{{.Size}}' "$RUNTIME_IMAGE")"
figure "image size: $((IMAGE_BYTES / 1000 / 1000)) MB ($IMAGE_BYTES bytes; runtime base $RUNTIME_IMAGE: $((RUNTIME_BYTES / 1000 / 1000)) MB)"
check "image runs as 65532:65532" test "$(docker image inspect -f '{{.Config.User}}' "$GATEWAY_IMAGE")" = 65532:65532
check "image has a HEALTHCHECK" test -n "$(docker image inspect -f '{{if .Config.Healthcheck}}{{.Config.Healthcheck.Test}}{{end}}' "$GATEWAY_IMAGE")"

# --- fixtures -----------------------------------------------------------------------------

MOCK_BIN="${QWEN_E2E_MOCK_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/debug/mock-model-studio}"
if [ ! -x "$MOCK_BIN" ]; then
  say "building mock-model-studio"
  cargo build --package mock-model-studio --bin mock-model-studio
fi
[ -x "$MOCK_BIN" ] || { echo "no mock binary at $MOCK_BIN" >&2; exit 1; }
cp "$MOCK_BIN" "$RUN/mock-model-studio"
chmod 0755 "$RUN/mock-model-studio"

# Keys: random, only in files and the environment, never printed. The mock accepts only
# UPSTREAM_KEY, so an answer proves the gateway sent the key it was given.
rand() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
UPSTREAM_KEY="sk-e2e-$(rand)"
ADMIN_TOKEN="$(rand)"
FORWARD="accept,content-type,user-agent,idempotency-key,openai-beta,x-mock-tokens,x-mock-delay-ms"
MODEL="qwen3-max-2026-01-23"

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

# --- 1. docker run ------------------------------------------------------------------------

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

# --- 2. and 3. docker-compose ---------------------------------------------------------------

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

for p in 8080 8081 8082; do
  port_free "$p" || { echo "host port $p is taken; the compose files publish it" >&2; exit 1; }
done

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

say "figures"
for f in "${FIGURES[@]}"; do echo "  $f"; done
echo "  whole run: $((SECONDS - T_START)) s"
echo "docker-e2e: $PASSED passed, $FAILED failed"
