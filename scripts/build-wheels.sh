#!/usr/bin/env bash
# Builds the wheels of the four Channelworks packages into dist/ (or --out-dir DIR), the same
# wheels the images install (scripts/build-images.sh calls this script for its wheelhouse):
#
#   channelworks             the SDK, the channel layers and the `channelworks` command
#   channelworks-interface   the interface server (Daphne), which `channelworks dev` runs
#   channelworks-worker      the worker runtime, which `channelworks dev` runs
#   channelworks-operator    the operator (brings the Kubernetes client `channelworks status` uses)
#
# Usage:
#   scripts/build-wheels.sh                  # -> dist/*.whl
#   scripts/build-wheels.sh --out-dir DIR    # -> DIR/*.whl (DIR is emptied of our old wheels)
#   python3 -m pip install dist/*.whl        # then, in any Python 3.11 venv (docs/cli.md#install)
#
# Needs uv (`python3 -m pip install uv`) and no network beyond what uv needs to fetch the build
# backend (hatchling) the first time; hatchling makes the same bytes for the same sources.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out_dir="$repo_root/dist"
packages=(channelworks channelworks-interface channelworks-worker channelworks-operator)

while (($#)); do
  case "$1" in
    --out-dir) out_dir="${2:?--out-dir needs a folder}"; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) printf '[build-wheels] error: unknown option %s (allowed: --out-dir, --help)\n' "$1" >&2; exit 2 ;;
  esac
done

uv_command=(uv)
command -v uv >/dev/null 2>&1 || uv_command=(python3 -m uv)
"${uv_command[@]}" --version >/dev/null 2>&1 \
  || { printf '[build-wheels] error: uv is missing: python3 -m pip install uv\n' >&2; exit 1; }

mkdir -p "$out_dir"
out_dir="$(cd "$out_dir" && pwd)"
rm -f "$out_dir"/channelworks-[0-9]*.whl "$out_dir"/channelworks_*.whl
for package in "${packages[@]}"; do
  (cd "$repo_root" && "${uv_command[@]}" build --quiet --wheel --package "$package" --out-dir "$out_dir")
done
printf '[build-wheels] %s\n' "$out_dir"/channelworks*.whl
