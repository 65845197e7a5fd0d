#!/usr/bin/env bash
# Builds the Channelworks container images with podman, with no container registry involved:
#
#   channelworks/base:bookworm-python3   Debian bookworm made with debootstrap, plus python3 and
#                                        python3-venv, imported with `podman import` (cached)
#   channelworks/interface:<version>     Dockerfile.interface
#   channelworks/worker:<version>        Dockerfile.worker (the base of every project image)
#   channelworks/operator:<version>      operator/Dockerfile
#   channelworks/example-<name>:<version>  with --example NAME: examples/NAME on the worker image
#
# Each image but the base gets two names: localhost/channelworks/NAME:TAG (what podman makes of
# a name without a registry) and docker.io/channelworks/NAME:TAG, the name Kubernetes and docker
# read the chart's default repositories (channelworks/operator, channelworks/interface) and the
# SDK's default base (channelworks/worker) as; so `podman save docker.io/channelworks/NAME:TAG`
# gives a node the image the chart names. The line that reports each image names both.
#
# Usage:
#   scripts/build-images.sh                      # base (when missing) + interface, worker, operator
#   scripts/build-images.sh --example chat       # ... and the chat example's worker image
#   scripts/build-images.sh --base-image python:3.11-slim-bookworm   # another base, no debootstrap
#   scripts/build-images.sh --images worker      # only some of interface,worker,operator
#   scripts/build-images.sh --base-only          # only make (or find) the base image
#   scripts/build-images.sh --wheelhouse-only    # only fill build/images/ (no podman; skaffold.yaml)
#
# How (docs/images.md says more):
#   1. The base: debootstrap of Debian bookworm from the Debian mirror the host's apt uses (or
#      $CHANNELWORKS_DEBIAN_MIRROR), trimmed, kept as a tarball in the cache, imported once.
#   2. A wheelhouse in build/images/ (git-ignored, the only part of the repo the engine sees, see
#      .dockerignore): wheels of the locked third-party dependencies (`uv export --frozen`, hashes
#      checked), downloaded once per locked set into the cache, and wheels of our own packages
#      (`uv build`), built each run (hatchling makes the same bytes for the same sources).
#   3. `podman build --network none` of each Dockerfile: the builder stage installs the wheelhouse
#      into a venv, the final stage gets the venv only, so no network and no compiler is needed.
#
# Environment:
#   CHANNELWORKS_IMAGE_CACHE     cache folder (default ${XDG_CACHE_HOME:-~/.cache}/channelworks/images)
#   CHANNELWORKS_DEBIAN_MIRROR   Debian mirror URL for debootstrap (default: the host's apt source)
#   CHANNELWORKS_IMAGE_TAG       tag of the built images (default: the packages' version)
#   CHANNELWORKS_OCI_RUNTIME     OCI runtime for podman (default runc)
set -euo pipefail
# The whole script is one block, read before it runs: editing the file while a build is running
# (a long one, minutes) cannot change what the running build does.
{

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${CHANNELWORKS_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/channelworks/images}"
runtime="${CHANNELWORKS_OCI_RUNTIME:-runc}"
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$repo_root/consumers_sdk/pyproject.toml")"
tag="${CHANNELWORKS_IMAGE_TAG:-$version}"
suite="bookworm"
made_base="localhost/channelworks/base:${suite}-python3"
base_packages="python3,python3-venv"
pip_version="25.3"
stage="$repo_root/build/images"

log() { printf '[build-images] %s\n' "$*"; }
fail() {
  printf '[build-images] error: %s\n' "$*" >&2
  exit 1
}

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
}

base_image=""
images="interface,worker,operator"
examples=()
base_only=false
wheelhouse_only=false
while (($#)); do
  case "$1" in
    --base-image) base_image="${2:?--base-image needs an image name}"; shift 2 ;;
    --images) images="${2:?--images needs a list, e.g. interface,worker}"; shift 2 ;;
    --example) examples+=("${2:?--example needs a folder name under examples/}"); shift 2 ;;
    --base-only) base_only=true; shift ;;
    --wheelhouse-only) wheelhouse_only=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) fail "unknown option '$1' (allowed: --base-image, --images, --example, --base-only, --wheelhouse-only, --help)" ;;
  esac
done
for image in ${images//,/ }; do
  case "$image" in
    interface | worker | operator) ;;
    *) fail "--images: unknown image '$image' (allowed: interface, worker, operator)" ;;
  esac
done
for example in "${examples[@]}"; do
  [[ -f "$repo_root/examples/$example/manage.py" ]] \
    || fail "--example $example: no Django project at examples/$example (manage.py missing)"
done
if ((${#examples[@]})) && [[ ",$images," != *,worker,* ]]; then
  images="$images,worker"  # an example image is made FROM the worker image
fi

$wheelhouse_only || command -v podman >/dev/null 2>&1 \
  || fail "podman is not installed (scripts/install-test-deps.sh installs it: podman, buildah, runc)"

# One build at a time per cache (tests of several areas call this script): the others wait here.
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9

seconds() { date +%s%N; }
elapsed() {
  local tenths=$((($(date +%s%N) - $1) / 100000000))
  printf '%d.%d' $((tenths / 10)) $((tenths % 10))
}

# --- 1. the base image ------------------------------------------------------------------------
host_debian_mirror() {
  # The first Debian archive URL in the host's apt sources (deb822 or one-line format).
  local file
  for file in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$file" ]] || continue
    awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) { print $i; exit } }' "$file"
  done | head -n 1
  if [[ -f /etc/apt/sources.list ]]; then
    awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) { print $i; exit } }' \
      /etc/apt/sources.list
  fi
}

rootfs=""  # the debootstrap folder while it is being made; removed however the script ends
trap '[[ -z "$rootfs" ]] || rm -rf "$rootfs"' EXIT

debootstrap_rootfs() {
  local tarball="$1" mirror
  mirror="${CHANNELWORKS_DEBIAN_MIRROR:-$(host_debian_mirror | head -n 1)}"
  [[ -n "$mirror" ]] || fail "no Debian mirror: set CHANNELWORKS_DEBIAN_MIRROR to a Debian archive URL"
  command -v debootstrap >/dev/null 2>&1 \
    || fail "debootstrap is not installed (scripts/install-test-deps.sh installs it)"
  [[ "$(id -u)" -eq 0 ]] || fail "debootstrap needs root; or pass --base-image IMAGE"
  rootfs="$(mktemp -d "$cache/base/rootfs.XXXXXX")"
  log "debootstrap $suite (minbase + $base_packages) from $mirror"
  debootstrap --variant=minbase --include="$base_packages" "$suite" "$rootfs" "$mirror" \
    >"$cache/base/debootstrap.log" 2>&1 \
    || fail "debootstrap failed; see $cache/base/debootstrap.log"
  # What a container does not need: package lists and caches, docs (licences stay), manuals,
  # translations, logs.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/cache/debconf/*-old \
    "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* \
    "$rootfs"/var/log/* "$rootfs"/tmp/* "$rootfs"/root/.cache
  find "$rootfs/usr/share/doc" -type f ! -name copyright -delete
  find "$rootfs/usr/share/doc" -type d -empty -delete
  tar --numeric-owner -C "$rootfs" -cf "$tarball.partial" .
  mv "$tarball.partial" "$tarball"
  rm -rf "$rootfs"
  rootfs=""
}

make_base_image() {
  if podman image exists "$made_base"; then
    log "base image $made_base present"
    return
  fi
  mkdir -p "$cache/base"
  local tarball="$cache/base/${suite}-python3-rootfs.tar" started
  started="$(seconds)"
  if [[ ! -f "$tarball" ]]; then
    debootstrap_rootfs "$tarball"
  fi
  log "podman import $tarball -> $made_base"
  podman import --quiet \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    "$tarball" "$made_base" >/dev/null
  log "base image made in $(elapsed "$started")s"
}

if [[ -z "$base_image" ]] && ! $wheelhouse_only; then
  make_base_image
  base_image="$made_base"
fi
if $base_only; then
  exit 0
fi

# --- 2. the wheelhouse ------------------------------------------------------------------------
uv_command=(uv)
command -v uv >/dev/null 2>&1 || uv_command=(python3 -m uv)
python="$repo_root/.venv/bin/python"
[[ -x "$python" ]] || fail ".venv is missing: run scripts/install-test-deps.sh (uv sync --frozen)"

pip_for_downloads() {
  # A small venv with a pinned pip, used only to download wheels (uv has no download command).
  local venv="$cache/pip-$pip_version"
  if ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    rm -rf "$venv"
    "${uv_command[@]}" venv --quiet --python 3.11 "$venv"
    "${uv_command[@]}" pip install --quiet --python "$venv/bin/python" "pip==$pip_version"
  fi
  printf '%s\n' "$venv/bin/python"
}

manylinux_platforms() {
  # Every manylinux tag a bookworm (glibc 2.36) x86_64 system accepts.
  local minor
  printf -- '--platform manylinux1_x86_64 --platform manylinux2010_x86_64 '
  printf -- '--platform manylinux2014_x86_64 '
  for minor in $(seq 5 36); do printf -- '--platform manylinux_2_%s_x86_64 ' "$minor"; done
}

make_wheelhouse() {
  local started package name lock_hash third_party pip_python
  started="$(seconds)"
  rm -rf "$stage"
  mkdir -p "$stage/requirements" "$stage/wheels/third-party" "$stage/wheels/ours"
  for package in channelworks-interface channelworks-worker channelworks-operator; do
    name="${package#channelworks-}"
    (cd "$repo_root" && "${uv_command[@]}" export --quiet --frozen --no-dev --no-emit-workspace \
      --format requirements-txt --package "$package") \
      | "$python" "$repo_root/tools/images/select_requirements.py" >"$stage/requirements/$name.txt"
  done
  # An example's own dependencies (the root pyproject's group example-NAME, e.g. the chat's
  # PostgreSQL driver), for the example's Dockerfile under examples/NAME/k8s/.
  for name in $("$python" -c 'import tomllib; print(*(g for g in tomllib.load(open("'"$repo_root"'/pyproject.toml", "rb"))["dependency-groups"] if g.startswith("example-")))'); do
    (cd "$repo_root" && "${uv_command[@]}" export --quiet --frozen --no-emit-workspace \
      --only-group "$name" --format requirements-txt) \
      | "$python" "$repo_root/tools/images/select_requirements.py" >"$stage/requirements/$name.txt"
  done
  # Keyed by the pinned set itself (from uv.lock), so a new pin or group downloads again.
  lock_hash="$(sort -u "$stage"/requirements/*.txt | sha256sum | cut -c1-16)"
  third_party="$cache/wheels/$lock_hash"
  if [[ ! -f "$third_party/.complete" ]]; then
    log "downloading the locked third-party wheels (set $lock_hash) into $third_party"
    pip_python="$(pip_for_downloads)"
    rm -rf "$third_party" && mkdir -p "$third_party"
    sort -u "$stage"/requirements/*.txt >"$third_party/requirements.txt"
    # shellcheck disable=SC2046  # the platform flags are meant to split
    "$pip_python" -m pip download --quiet --disable-pip-version-check --no-deps --require-hashes \
      --only-binary=:all: --implementation cp --python-version 3.11 --abi cp311 \
      $(manylinux_platforms) -r "$third_party/requirements.txt" -d "$third_party"
    touch "$third_party/.complete"
  fi
  cp -l "$third_party"/*.whl "$stage/wheels/third-party/" 2>/dev/null \
    || cp "$third_party"/*.whl "$stage/wheels/third-party/"
  # Our wheels: the same command and bytes as dist/ (scripts/build-wheels.sh, docs/cli.md#install).
  "$repo_root/scripts/build-wheels.sh" --out-dir "$stage/wheels/ours" >/dev/null
  # Each image gets the SDK's wheel and its own: a change to one image's code rebuilds only it.
  for name in interface worker operator; do
    mkdir -p "$stage/wheels/$name"
    cp "$stage"/wheels/ours/channelworks-[0-9]*.whl "$stage"/wheels/ours/channelworks_"$name"-*.whl \
      "$stage/wheels/$name/"
  done
  log "wheelhouse ready in $(elapsed "$started")s: $(find "$stage/wheels" -name '*.whl' | wc -l) wheels"
}

# --- 3. the images ----------------------------------------------------------------------------
build() {
  local name="$1" dockerfile="$2" started
  shift 2
  started="$(seconds)"
  log "building channelworks/$name:$tag from $dockerfile"
  mkdir -p "$cache/logs"
  if ! podman build --runtime "$runtime" --network none --layers \
    --build-arg "BASE_IMAGE=$base_image" --build-arg "VERSION=$version" "$@" \
    --file "$repo_root/$dockerfile" --tag "localhost/channelworks/$name:$tag" \
    --tag "docker.io/channelworks/$name:$tag" "$repo_root" \
    >"$cache/logs/$name.log" 2>&1; then
    tail -n 40 "$cache/logs/$name.log" >&2
    fail "podman build of channelworks/$name failed; the whole log: $cache/logs/$name.log"
  fi
  log "channelworks/$name:$tag built in $(elapsed "$started")s," \
    "$(podman image inspect --format '{{.Size}}' "localhost/channelworks/$name:$tag" \
      | awk '{ printf "%.0f MB", $1 / 1e6 }'):" \
    "localhost/channelworks/$name:$tag docker.io/channelworks/$name:$tag"
}

make_wheelhouse
if $wheelhouse_only; then
  exit 0
fi
for image in ${images//,/ }; do
  case "$image" in
    interface) build interface Dockerfile.interface ;;
    worker) build worker Dockerfile.worker ;;
    operator) build operator operator/Dockerfile ;;
  esac
done
for example in "${examples[@]}"; do
  build "example-$example" tools/images/Dockerfile.example \
    --build-arg "WORKER_IMAGE=localhost/channelworks/worker:$tag" \
    --build-arg "EXAMPLE=$example" --build-arg "SETTINGS_MODULE=$example.settings"
done
exit 0
}
