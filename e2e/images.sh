#!/usr/bin/env bash
# Builds every container image the real-node e2e suite runs and writes each as a docker-archive
# tarball, to be imported into the node's containerd (`ctr -n k8s.io images import FILE`): no
# registry is involved. docs/images.md ("Images for the real-node e2e suite") says more.
#
#   e2e/images.sh [DIR]        # default DIR: build/node-images/
#
# DIR/<file>.tar and the references each archive carries (DIR/images.txt lists them, one
# "<file> <reference>..." line per archive):
#   operator.tar      docker.io/channelworks/operator:{dev,<version>}     the chart's image
#   interface.tar     docker.io/channelworks/interface:{dev,<version>}    operator.interfaceImage
#   worker.tar        docker.io/channelworks/worker:{dev,<version>}       base of project images
#   chat-example.tar  docker.io/channelworks/chat-example:dev    examples/chat/k8s/realtimeapp.yaml
#   redis.tar         localhost/channelworks/redis:7.0-bookworm           operator.redisImage
#   postgres.tar      localhost/channelworks/postgres:15-bookworm         the chat example's database
#   pause.tar         localhost/channelworks/pause:3.10                   containerd's sandbox_image
#   shell.tar         localhost/channelworks/base:bookworm-python3        /bin/sh for helper pods
# The product images carry the names the chart and the manifests use, unqualified there, which
# containerd completes to docker.io/...; the node-only images are named under localhost/.
#
# Steps: scripts/build-images.sh (the debootstrap base, cached, and the operator, interface and
# worker images); the chat example's image (examples/chat/k8s/Dockerfile on the worker image);
# the pause binary (gcc -static) and its one-file image; Redis and PostgreSQL from Debian's
# packages on the base image (apt, so these two builds use the network); then one archive per
# image, written again only when its image changed (DIR/<file>.id holds the image ID saved).
#
# Environment: what scripts/build-images.sh reads (CHANNELWORKS_IMAGE_CACHE,
# CHANNELWORKS_DEBIAN_MIRROR, CHANNELWORKS_OCI_RUNTIME), and CHANNELWORKS_E2E_TAG (default dev),
# the tag the manifests use. e2e/images/verify.sh runs the node images with podman to check them.
set -euo pipefail
# One block, read whole before it runs (as scripts/build-images.sh): edits during a build are safe.
{

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$repo_root/build/node-images}"
runtime="${CHANNELWORKS_OCI_RUNTIME:-runc}"
e2e_tag="${CHANNELWORKS_E2E_TAG:-dev}"
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$repo_root/consumers_sdk/pyproject.toml")"
base="localhost/channelworks/base:bookworm-python3"
here="$repo_root/e2e/images"

log() { printf '[e2e/images] %s\n' "$*"; }
fail() {
  printf '[e2e/images] error: %s\n' "$*" >&2
  exit 1
}
seconds() { date +%s%N; }
elapsed() {
  local tenths=$((($(date +%s%N) - $1) / 100000000))
  printf '%d.%d' $((tenths / 10)) $((tenths % 10))
}

for tool in podman gcc flock; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool is not installed"
done
mkdir -p "$out"
out="$(cd "$out" && pwd)"
exec 8>"$out/.lock"
flock 8  # one run per DIR at a time

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
total_started="$(seconds)"

# --- 1. the product images, by the script every other image build uses ------------------------
started="$(seconds)"
bash "$repo_root/scripts/build-images.sh" --images interface,worker,operator
log "step product images (scripts/build-images.sh): $(elapsed "$started")s"

podman_build() {
  # podman_build NAME REFERENCE CONTAINERFILE CONTEXT [podman build options...]
  local name="$1" reference="$2" containerfile="$3" context="$4" started
  shift 4
  started="$(seconds)"
  if ! podman build --runtime "$runtime" --layers --file "$containerfile" --tag "$reference" \
    "$@" "$context" >"$work/$name.log" 2>&1; then
    tail -n 40 "$work/$name.log" >&2
    fail "podman build of $reference failed"
  fi
  log "step $name image ($reference): $(elapsed "$started")s"
}

# --- 2. the chat example as the RealtimeApp runs it: settings for a cluster, its PostgreSQL driver
# from the wheelhouse scripts/build-images.sh filled (build/images/, the context's only inputs) ---
podman_build chat-example "localhost/channelworks/chat-example:$e2e_tag" \
  "$repo_root/examples/chat/k8s/Dockerfile" "$repo_root" --network none \
  --build-arg "WORKER_IMAGE=localhost/channelworks/worker:$version"

# --- 3. the pause image ------------------------------------------------------------------------
mkdir "$work/pause"
gcc -static -Os -s -Wall -Wextra -Werror -o "$work/pause/pause" "$here/pause.c"
podman_build pause localhost/channelworks/pause:3.10 "$here/Containerfile.pause" "$work/pause" \
  --network none --timestamp 0

# --- 4. Redis and PostgreSQL from Debian's packages (apt needs the network) --------------------
podman_build redis localhost/channelworks/redis:7.0-bookworm "$here/Containerfile.redis" "$here" \
  --build-arg "BASE_IMAGE=$base"
podman_build postgres localhost/channelworks/postgres:15-bookworm "$here/Containerfile.postgres" \
  "$here" --build-arg "BASE_IMAGE=$base"

# --- 5. the archives -----------------------------------------------------------------------------
save() {
  # save FILE SOURCE REFERENCE...: SOURCE (in podman's storage) written to DIR/FILE.tar under the
  # given references, unless DIR already holds that image.
  local file="$1" source="$2" id started reference
  shift 2
  id="$(podman image inspect --format '{{.Id}}' "$source")"
  printf '%s.tar %s\n' "$file" "$*" >>"$work/images.txt"
  if [[ -f "$out/$file.tar" && "$(cat "$out/$file.id" 2>/dev/null)" == "$id $*" ]]; then
    log "archive $file.tar is up to date"
    return
  fi
  started="$(seconds)"
  for reference in "$@"; do
    [[ "$reference" == "$source" ]] || podman tag "$source" "$reference"
  done
  rm -f "$out/$file.tar" "$out/$file.id"
  podman save --quiet --format docker-archive --output "$out/$file.tar.partial" "$@"
  # The extra names were only for the archive: podman's storage keeps its own names, so a short
  # name such as channelworks/worker:<version> still means the localhost/ image built last.
  for reference in "$@"; do
    [[ "$reference" == "$source" ]] || podman untag "$source" "$reference"
  done
  mv "$out/$file.tar.partial" "$out/$file.tar"
  printf '%s %s\n' "$id" "$*" >"$out/$file.id"
  log "archive $file.tar ($(du -m "$out/$file.tar" | cut -f1) MB): $(elapsed "$started")s"
}

started="$(seconds)"
for image in operator interface worker; do
  if [[ "$e2e_tag" == "$version" ]]; then
    save "$image" "localhost/channelworks/$image:$version" "docker.io/channelworks/$image:$version"
  else
    save "$image" "localhost/channelworks/$image:$version" \
      "docker.io/channelworks/$image:$e2e_tag" "docker.io/channelworks/$image:$version"
  fi
done
save chat-example "localhost/channelworks/chat-example:$e2e_tag" \
  "docker.io/channelworks/chat-example:$e2e_tag"
save redis localhost/channelworks/redis:7.0-bookworm localhost/channelworks/redis:7.0-bookworm
save postgres localhost/channelworks/postgres:15-bookworm localhost/channelworks/postgres:15-bookworm
save pause localhost/channelworks/pause:3.10 localhost/channelworks/pause:3.10
save shell "$base" "$base"
mv "$work/images.txt" "$out/images.txt"
log "step archives: $(elapsed "$started")s"
log "done in $(elapsed "$total_started")s: $out ($(du -sm "$out" | cut -f1) MB)"
exit 0
}
