#!/usr/bin/env bash
# The project's checks, in the order CI runs them: install test dependencies, ruff lint, ruff
# format, mypy --strict on our packages, import layering (when .importlinter exists), then pytest.
# Arguments go to pytest:   scripts/test.sh tests/layer -x -k cluster
# Exits non-zero on the first failing step, and when pytest collects no test at all (exit 5).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
venv_bin="$repo_root/.venv/bin"

step() { printf '\n=== %s ===\n' "$*"; }

step "install test dependencies (scripts/install-test-deps.sh)"
bash scripts/install-test-deps.sh

step "ruff check"
"$venv_bin/ruff" check .

step "ruff format --check"
"$venv_bin/ruff" format --check .

step "mypy --strict"
mypy_paths=()
for dir in consumers_sdk/src images/*/src operator/src; do
  if [[ -d "$dir" && -n "$(find "$dir" -name '*.py' -print -quit)" ]]; then
    mypy_paths+=("$dir")
  fi
done
if ((${#mypy_paths[@]} > 0)); then
  echo "checking: ${mypy_paths[*]}"
  "$venv_bin/mypy" --strict "${mypy_paths[@]}"
else
  echo "no Python package sources found: nothing to type-check"
fi

step "lint-imports"
if [[ -f .importlinter ]]; then
  "$venv_bin/lint-imports"
else
  echo "no .importlinter: skipped"
fi

step "pytest $*"
status=0
"$venv_bin/python" -m pytest "$@" || status=$?
if ((status == 5)); then
  echo "FAILED: pytest collected no tests (exit code 5); a run that tests nothing is a failure" >&2
  exit 5
fi
exit "$status"
