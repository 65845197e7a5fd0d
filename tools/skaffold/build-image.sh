#!/usr/bin/env bash
# skaffold's build command for the operator, interface and worker images (skaffold.yaml, custom
# builder). Those Dockerfiles install wheels from build/images/, so each build first refreshes
# that wheelhouse from the sources (`scripts/build-images.sh --wheelhouse-only`: the locked
# third-party wheels, cached, and wheels of our packages), then builds with docker, which is
# what kind loads images from.
#
#   tools/skaffold/build-image.sh DOCKERFILE      # e.g. Dockerfile.worker, operator/Dockerfile
#
# skaffold sets IMAGE (name:tag to build), BUILD_CONTEXT (the repository root here) and
# PUSH_IMAGE (true for a remote cluster; with kind skaffold loads the image into the nodes).
# BASE_IMAGE, when set, is passed to the Dockerfiles (their default is a python:3.11 slim image).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dockerfile="${1:-}"
if [[ -z "$dockerfile" || ! -f "$repo_root/$dockerfile" ]]; then
    echo "error: give the Dockerfile to build, relative to the repository root (got '$dockerfile')" >&2
    exit 2
fi
if [[ -z "${IMAGE:-}" ]]; then
    echo "error: IMAGE is not set: skaffold sets it (name:tag of the image to build)" >&2
    exit 2
fi
command -v docker >/dev/null || { echo "error: docker is required (kind runs on it)" >&2; exit 1; }

bash "$repo_root/scripts/build-images.sh" --wheelhouse-only

build_args=()
if [[ -n "${BASE_IMAGE:-}" ]]; then
    build_args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
fi
DOCKER_BUILDKIT=1 docker build "${build_args[@]}" --file "$repo_root/$dockerfile" \
    --tag "$IMAGE" "${BUILD_CONTEXT:-$repo_root}"
if [[ "${PUSH_IMAGE:-false}" == "true" ]]; then
    docker push "$IMAGE"
fi
