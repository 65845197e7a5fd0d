#!/usr/bin/env bash
# The project's checks, in the order CI runs them: install test dependencies, ruff lint, ruff
# format, mypy --strict on our packages, import layering (when .importlinter exists), pytest on
# tests/, then the end-to-end suite on a real single-node Kubernetes cluster (e2e/run-on-node.sh:
# this checkout's images, a node brought up inside a network namespace, torn down afterwards).
#
#   scripts/test.sh                        # everything (what CI runs)
#   scripts/test.sh tests/layer -x -k x    # arguments go to pytest; the e2e stage is skipped
#   scripts/test.sh --no-e2e               # everything but the real-node e2e stage
#   scripts/test.sh --e2e-only [ARGS]      # install, then only the e2e stage (ARGS to its pytest)
#
# Exits non-zero when a step fails, and when a pytest run collects no test at all (exit 5). The
# e2e stage runs even when tests/ failed (its result is worth having); the exit status is then
# the first failure's.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
venv_bin="$repo_root/.venv/bin"

step() { printf '\n=== %s [%(%H:%M:%S)T] ===\n' "$*" -1; }

run_checks=true
run_tests=true
run_e2e=true
pytest_args=()
case "${1:-}" in
  --no-e2e) run_e2e=false; shift ;;
  --e2e-only) run_checks=false; run_tests=false; shift ;;
esac
if $run_tests && (($#)); then
  run_e2e=false  # a chosen subset of tests/: nothing else
fi
pytest_args=("$@")

# pytest ARGS...: run it; exit 5 (no test collected) counts as a failure.
run_pytest() {
  local status=0
  "$@" || status=$?
  if ((status == 5)); then
    echo "FAILED: pytest collected no tests (exit code 5); a run that tests nothing is a failure" >&2
  fi
  return "$status"
}

step "install test dependencies (scripts/install-test-deps.sh)"
bash scripts/install-test-deps.sh

if $run_checks; then
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
  echo "checking: ${mypy_paths[*]}"
  "$venv_bin/mypy" --strict "${mypy_paths[@]}"

  step "lint-imports"
  "$venv_bin/lint-imports"
fi

status=0
if $run_tests; then
  step "pytest ${pytest_args[*]}"
  run_pytest "$venv_bin/python" -m pytest "${pytest_args[@]}" || status=$?
fi

if $run_e2e; then
  e2e_args=()
  $run_tests || e2e_args=("${pytest_args[@]}")
  step "e2e on a real node: images, node up, pytest e2e, node down (e2e/run-on-node.sh)"
  e2e_status=0
  run_pytest bash e2e/run-on-node.sh "${e2e_args[@]}" || e2e_status=$?
  ((status != 0)) || status=$e2e_status
fi
exit "$status"
