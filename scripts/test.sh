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
#   scripts/test.sh --fast [ARGS]          # the checks and the fast tier of tests/ (ARGS to its
#                                          # pytest): no Go build, no control plane, no images,
#                                          # no Redis Cluster, no browser
#
# The Go builds (tools/kube/build-binaries.sh, long on an empty cache) overlap the rest: in a
# whole run (no pytest arguments) they start in the background at nice 19 once the Debian
# packages and the venv are there, while the checks and the tests that need no Go-built binary
# (pytest -m "not go_binaries") run; then the script waits for the binaries tests/ needs (control
# plane, helm, promtool) and runs the others (-m go_binaries) while the node's binaries are still
# being built, then waits for those and runs e2e. When the binaries tests/ needs are ready before
# the tests start (a warm cache: the builds only check their stamps), one pytest runs every test
# instead of the two halves. Each build's log is in build/go-builds/; a failed build stops the run
# with the end of its log. With pytest arguments, or --e2e-only, every build finishes first
# (scripts/install-test-deps.sh), as the chosen tests may need any binary.
#
# pytest runs in parallel (pytest-xdist, docs/testing.md): CHANNELWORKS_TEST_WORKERS processes
# (default 4: the workers mostly wait on the processes their tests start, so on 2 cores 4 of them
# finish tests/ sooner than 2 or 3), --dist loadgroup; 0 or 1 runs it in this process, serially.
# It applies to the whole run and to --fast; with pytest arguments, add -n yourself.
#
# Exits non-zero when a step fails, and when a pytest run collects no test at all (exit 5). The
# e2e stage runs even when tests/ failed (its result is worth having); the exit status is then
# the first failure's.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
venv_bin="$repo_root/.venv/bin"

# Compiled bytecode is kept, in build/pycache (never beside the sources), for every Python process
# of the run: the tests start hundreds (interfaces, workers, manage.py, pytest's workers), and
# where PYTHONDONTWRITEBYTECODE is set each compiled Daphne, Twisted and Django again (about 1 s
# of CPU per process). tests/support/bytecode_cache.py does the same for a bare pytest.
export PYTHONPYCACHEPREFIX="${PYTHONPYCACHEPREFIX:-$repo_root/build/pycache}"
unset PYTHONDONTWRITEBYTECODE

# The tiers, from the markers tests/support/markers.py sets (docs/testing.md). The two halves of a
# whole run together select every test of tests/ exactly once.
NO_GO_BINARIES="not go_binaries"
GO_BINARIES="go_binaries"
FAST_TIER="not control_plane and not images and not redis_cluster and not go_binaries and not browser"

# pytest-xdist: how many test processes (docs/testing.md, "Running in parallel"): 4 by default,
# 6 for --fast (it starts no control plane, so more waiting workers cost little memory).
default_workers=4
[[ "${1:-}" == --fast ]] && default_workers=6
test_workers="${CHANNELWORKS_TEST_WORKERS:-$default_workers}"
if [[ ! "$test_workers" =~ ^[0-9]+$ ]]; then
  echo "CHANNELWORKS_TEST_WORKERS must be a whole number of test processes (0 or 1: serial)," \
    "not '$test_workers'" >&2
  exit 2
fi
parallel=()
if ((test_workers > 1)); then
  parallel=(-n "$test_workers" --dist loadgroup)
fi

step() { printf '\n=== %s [%(%H:%M:%S)T] ===\n' "$*" -1; }

run_checks=true
run_tests=true
run_e2e=true
fast=false
case "${1:-}" in
  --no-e2e) run_e2e=false; shift ;;
  --e2e-only) run_checks=false; run_tests=false; shift ;;
  --fast) fast=true; run_e2e=false; shift ;;
esac
pytest_args=("$@")
if $run_tests && ! $fast && ((${#pytest_args[@]})); then
  run_e2e=false  # a chosen subset of tests/: nothing else
fi
# Builds in the background only when both halves of tests/ run: a chosen subset may need anything.
overlap=false
if $run_tests && ! $fast && ((${#pytest_args[@]} == 0)); then
  overlap=true
fi

# pytest ARGS...: run it; exit 5 (no test collected) counts as a failure.
run_pytest() {
  local status=0
  "$@" || status=$?
  if ((status == 5)); then
    echo "FAILED: pytest collected no tests (exit code 5); a run that tests nothing is a failure" >&2
  fi
  return "$status"
}

# --- Go builds in the background ---------------------------------------------------------------
# Two stages, one after the other in one background job: "tests" (what tests/ runs: the control
# plane, kwok, helm, promtool and the Prometheus server) and, when e2e runs, "node" (the real
# node's binaries). Each writes build/go-builds/<stage>.log, then <stage>.status (its exit code).
builds_dir="$repo_root/build/go-builds"
builds_pid=""

go_build_stage() {
  local stage="$1" status=0
  shift
  "$@" >"$builds_dir/$stage.log" 2>&1 || status=$?
  echo "$status" >"$builds_dir/$stage.status"
  return "$status"
}

go_builds() {
  go_build_stage tests bash -c \
    'bash tools/kube/build-binaries.sh --control-plane && bash tests/chart/build-promtool.sh' ||
    return
  if $run_e2e; then
    go_build_stage node bash tools/kube/build-binaries.sh --node
  fi
}

start_go_builds() {
  mkdir -p "$builds_dir"
  rm -f "$builds_dir"/*.status "$builds_dir"/*.log
  set -m  # its own process group, so that stop_go_builds can end every compiler it started
  nice -n 19 bash -c "$(declare -f go_build_stage go_builds); run_e2e=$run_e2e builds_dir='$builds_dir'; go_builds" &
  builds_pid=$!
  set +m
  echo "started in the background (pid $builds_pid, nice 19); logs in $builds_dir/"
}

stop_go_builds() {
  # The whole group, even when its first process is gone already (killed on its own).
  if [[ -n "$builds_pid" ]]; then
    kill -TERM -- "-$builds_pid" 2>/dev/null || true
  fi
}

# wait_for_go_build STAGE: wait until the stage is done; show its log; fail with its end if it
# failed (or if the background job ended without finishing it).
wait_for_go_build() {
  local stage="$1" status_file="$builds_dir/$1.status" log="$builds_dir/$1.log"
  step "waiting for the Go builds of stage '$stage' (tools/kube/build-binaries.sh)"
  while [[ ! -f "$status_file" ]] && kill -0 "$builds_pid" 2>/dev/null; do
    sleep 2
  done
  local status
  status="$(cat "$status_file" 2>/dev/null || echo "missing")"
  if [[ "$status" == 0 ]]; then
    cat "$log"
    return 0
  fi
  echo "FAILED: the Go builds of stage '$stage' (exit status: $status); end of $log:" >&2
  tail -n 60 "$log" >&2 2>/dev/null || echo "(no log)" >&2
  return 1
}

trap stop_go_builds EXIT
trap 'exit 130' INT   # exit, so that the EXIT trap ends the background builds too
trap 'exit 143' TERM

step "install test dependencies (scripts/install-test-deps.sh)"
if $overlap || $fast; then
  bash scripts/install-test-deps.sh --no-go-builds
else
  bash scripts/install-test-deps.sh
fi

if $overlap; then
  step "Go builds (tools/kube/build-binaries.sh, tests/chart/build-promtool.sh)"
  start_go_builds
fi

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
if $fast; then
  step "pytest, fast tier: -m '$FAST_TIER' ${pytest_args[*]}"
  run_pytest "$venv_bin/python" -m pytest "${parallel[@]}" -m "$FAST_TIER" "${pytest_args[@]}" ||
    status=$?
elif $overlap && [[ "$(cat "$builds_dir/tests.status" 2>/dev/null)" == 0 ]]; then
  wait_for_go_build tests  # done already: shows its log
  step "pytest, every test (the binaries tests/ needs were ready): ${parallel[*]}"
  run_pytest "$venv_bin/python" -m pytest "${parallel[@]}" || status=$?
elif $overlap; then
  step "pytest, the tests that need no Go-built binary: -m '$NO_GO_BINARIES' ${parallel[*]}"
  run_pytest "$venv_bin/python" -m pytest "${parallel[@]}" -m "$NO_GO_BINARIES" || status=$?
  wait_for_go_build tests
  step "pytest, the tests that need a Go-built binary: -m '$GO_BINARIES' ${parallel[*]}"
  tests_status=0
  run_pytest "$venv_bin/python" -m pytest "${parallel[@]}" -m "$GO_BINARIES" || tests_status=$?
  ((status != 0)) || status=$tests_status
elif $run_tests; then
  step "pytest ${pytest_args[*]}"
  run_pytest "$venv_bin/python" -m pytest "${pytest_args[@]}" || status=$?
fi

if $run_e2e; then
  if $overlap; then
    wait_for_go_build node
  fi
  e2e_args=()
  $run_tests || e2e_args=("${pytest_args[@]}")
  step "e2e on a real node: images, node up, pytest e2e, node down (e2e/run-on-node.sh)"
  e2e_status=0
  run_pytest bash e2e/run-on-node.sh "${e2e_args[@]}" || e2e_status=$?
  ((status != 0)) || status=$e2e_status
fi
exit "$status"
