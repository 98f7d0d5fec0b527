# docker-e2e: the private engine: installing Debian's docker.io and docker-compose, starting
# containerd and dockerd on the private data root, and stopping them (the EXIT trap's cleanup).
# shellcheck shell=bash
# Sourced by scripts/docker-e2e.sh: functions only, nothing runs when sourced; they use the
# entry point's globals (RUN, DATA_ROOT, PROJECT, CONTAINERD_PID, DOCKERD_PID, ...).

# Installs docker.io, docker-compose and debootstrap (Debian) when one is missing.
install_engine() {
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
}

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

# Starts containerd and dockerd on the private data root, sockets in $RUN; sets
# CONTAINERD_PID and DOCKERD_PID (cleanup stops them).
start_engine() {
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
}
