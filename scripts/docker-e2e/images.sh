# docker-e2e: the base images (real when present or pullable, else stand-ins built from
# Debian's mirror, their recipes and builds) and the build of the project's image.
# shellcheck shell=bash
# Sourced by scripts/docker-e2e.sh: functions only, nothing runs when sourced; they use the
# entry point's globals (RUN, BASE_MODE, STANDIN_LABEL, the image names, ...).

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

build_standin() {
  local name="$1" hash="$2" dir="$3"
  timeout 1200 docker build --progress=plain --label "$STANDIN_LABEL=$hash" -t "$name" "$dir" \
    >"$RUN/standin-build.log" 2>&1 || { tail -n 30 "$RUN/standin-build.log" >&2; exit 1; }
}
build_builder() { build_standin "$1" "$2" "$SI/builder"; }
build_runtime() { build_standin "$1" "$2" "$SI/runtime"; }
build_redis() { build_standin "$1" "$2" "$SI/redis"; }

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
build_builder_with_base() { need_base; build_builder "$@"; }
build_runtime_with_base() { need_base; build_runtime "$@"; }
build_redis_with_base() { need_base; build_redis "$@"; }

# Writes the stand-ins' recipes to $SI; sets SI, BASE_HASH and BASE_IMAGE.
write_standin_recipes() {
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
}

# The base images the Dockerfile and the compose files name (ensure_image, each).
base_images() {
  REGISTRY=""  # "", yes or no: learnt from the first pull
  write_standin_recipes

  say "base images"
  T_BASE=$SECONDS
  # A stand-in's hash covers its base's too.
  BUILDER_HASH="$(hash_of "$SI/base/recipe" "$SI/builder/Dockerfile" "$SI/builder/host-ca-certificates.crt")"
  RUNTIME_HASH="$(hash_of "$SI/base/recipe" "$SI/runtime/Dockerfile")"
  REDIS_HASH="$(hash_of "$SI/base/recipe" "$SI/redis/Dockerfile" "$SI/redis/docker-entrypoint.sh")"
  ensure_image "$BUILDER_IMAGE" "$BUILDER_HASH" build_builder_with_base
  ensure_image "$RUNTIME_IMAGE" "$RUNTIME_HASH" build_runtime_with_base
  ensure_image "$REDIS_IMAGE" "$REDIS_HASH" build_redis_with_base
  # Debian bases of older recipes (their stand-ins were replaced above).
  for img in $(docker image ls --format '{{.Repository}}:{{.Tag}}' qwen-e2e/debian); do
    [ "$img" = "$BASE_IMAGE" ] || docker image rm "$img" >/dev/null 2>&1 || true
  done
  figure "base images ready in $((SECONDS - T_BASE)) s"
}

# docker build of the project's Dockerfile, unchanged; size figures, user, HEALTHCHECK.
build_gateway_image() {
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
}
