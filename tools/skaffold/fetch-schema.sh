#!/usr/bin/env bash
# Fetch the JSON schema of skaffold.yaml for the tests, from skaffold's own Go module (the schema
# files live in it under docs-v2/content/en/schemas/), and cache it outside the repository like
# tools/kube/build-binaries.sh caches its binaries:
#
#   ${CHANNELWORKS_CACHE:-$HOME/.cache/channelworks}/skaffold/<module-version>/<schema-version>.json
#
# `go mod download` puts the module in the Go module cache; nothing is built and nothing but the
# Go module proxy is asked. A stamp file makes a second run a no-op.
#
# Usage: tools/skaffold/fetch-schema.sh [--print-path]
#   --print-path  print where the schema is (or will be) cached and exit (fetches nothing)
# Environment: CHANNELWORKS_CACHE (cache root).
set -euo pipefail

# Pinned: skaffold v2.16.1 writes and reads skaffold/v4beta13, the apiVersion of skaffold.yaml.
SKAFFOLD_MODULE="github.com/GoogleContainerTools/skaffold/v2"
SKAFFOLD_VERSION="v2.16.1"
SCHEMA_VERSION="v4beta13"

CACHE_ROOT="${CHANNELWORKS_CACHE:-$HOME/.cache/channelworks}"
DIR="$CACHE_ROOT/skaffold/$SKAFFOLD_VERSION"
SCHEMA="$DIR/$SCHEMA_VERSION.json"
STAMP="$DIR/.stamp-$SCHEMA_VERSION"

if [[ "${1:-}" == "--print-path" ]]; then
    echo "$SCHEMA"
    exit 0
fi
if [[ $# -gt 0 ]]; then
    echo "error: unknown argument '$1' (the only option is --print-path)" >&2
    exit 2
fi

if [[ -f "$SCHEMA" && -f "$STAMP" && "$(cat "$STAMP")" == "$SKAFFOLD_VERSION" ]]; then
    echo "skaffold schema $SCHEMA_VERSION: cached in $SCHEMA"
    exit 0
fi

command -v go >/dev/null || { echo "error: the Go toolchain ('go') is required" >&2; exit 1; }
echo "skaffold schema $SCHEMA_VERSION: go mod download $SKAFFOLD_MODULE@$SKAFFOLD_VERSION"
# Outside any module, so no go.mod of the caller is read or changed.
info="$(cd / && go mod download -json "$SKAFFOLD_MODULE@$SKAFFOLD_VERSION")" || {
    echo "error: go mod download $SKAFFOLD_MODULE@$SKAFFOLD_VERSION failed:" >&2
    echo "$info" >&2
    exit 1
}
module_dir="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$info")"
source_file="$module_dir/docs-v2/content/en/schemas/$SCHEMA_VERSION.json"
if [[ ! -f "$source_file" ]]; then
    echo "error: $SKAFFOLD_MODULE@$SKAFFOLD_VERSION has no docs-v2/content/en/schemas/$SCHEMA_VERSION.json" >&2
    exit 1
fi
mkdir -p "$DIR"
cp "$source_file" "$SCHEMA.tmp"
chmod 0644 "$SCHEMA.tmp"
mv "$SCHEMA.tmp" "$SCHEMA"
echo "$SKAFFOLD_VERSION" >"$STAMP"
echo "skaffold schema $SCHEMA_VERSION: cached in $SCHEMA"
