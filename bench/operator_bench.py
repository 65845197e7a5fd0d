#!/usr/bin/env python
"""Operator benchmark: the real operator process against a real, local control plane.

    .venv/bin/python bench/operator_bench.py             # 20 apps one by one, then 100 in all
    .venv/bin/python bench/operator_bench.py --quick     # 10 apps one by one, then 30 in all
    .venv/bin/python bench/operator_bench.py --apps 200  # restart and memory figures, 200 apps

What runs (every part real, all on 127.0.0.1): etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok (one fake node that runs the pods as Ready without containers), from
``tests/support/control_plane.py``; the CRD of charts/channelworks/crds/; one ``redis-server``
with a password; ``python -m channelworks_operator`` as its own process (production timings:
resync 60 s; each app's built-in autoscaler reads its queue every 15 s). Every RealtimeApp uses
``channelLayer.redis.mode: external`` with that Redis's URL and a password Secret, so no Redis
pods or cluster forming are involved; the children the operator makes for such an app are
listed in the output (from the operator's own builders).

Figures:

1. create -> children: apps created one at a time (the next once the previous is Ready); for each,
   the time from the create request until the last of its children was seen on a watch stream,
   and until its ``Ready`` condition was ``True`` (that also waits for the controller-manager,
   the scheduler and kwok to make the pods available); p50/p99. Apart from that: the time from
   the app's Deployments all available (as their watch reported) to its status saying Ready,
   which is the operator's own share of "create -> Ready".
2. burst: the remaining apps created back to back; the same times per app, and until the last
   app had all children / was Ready.
3. memory with all apps: the operator's RSS (/proc/<pid>/status VmRSS; median of 1 s samples
   over a steady window after every app is Ready) and its peak (VmHWM), against the RSS of the
   same process before the first app; its CPU use and reconciles per second in that window.
4. restart: SIGTERM to the operator, a new process started; the times until it is the leader,
   until it has applied every child of every app once (its
   ``channelworks_operator_objects_applied_total{outcome="synced"}`` reaches apps x children;
   "synced" is the outcome of a process's first apply of a child it did not create) and until
   it has finished as many reconciles as there are apps (``..._reconcile_total``). The status is
   not a usable signal: the operator does not rewrite an unchanged status, so after a restart
   nothing in it moves. Also what the new process's applies did (created / updated / synced /
   skipped), and its RSS and peak afterwards.

Prints a table; exit code 0 unless the benchmark itself crashed (slow numbers are results).
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import _operator_cluster as cluster
import _servers
from _machine import LoadSampler, load, package_version
from _operator_watch import FirstSeen

from channelworks_operator import spec
from channelworks_operator.kube import Kube, object_path

NAMESPACE = "bench"
SECRET = "redis-password"
CHILD_TIMEOUT = 120.0
READY_TIMEOUT = 300.0
RESTART_TIMEOUT = 600.0
POLL = 0.01
PODS_PER_APP = 3  # 2 interface pods and 1 worker (the defaults; the autoscaler keeps 1 when idle)
PODS_PER_NODE = 400  # a kwok node takes 500 (control_plane.fake_node)
METRICS_POLL = 0.2


@dataclass(frozen=True)
class Settings:
    one_by_one: int
    apps: int
    steady_seconds: float


FULL = Settings(one_by_one=20, apps=100, steady_seconds=30.0)
QUICK = Settings(one_by_one=10, apps=30, steady_seconds=16.0)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest rank on the sorted values (with 20 values, p99 is the largest)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def app_name(index: int) -> str:
    return f"app-{index:03d}"


# -- the apps ------------------------------------------------------------------------------------


@dataclass
class Bench:
    """What every figure needs: the API, the watch, the Redis, the operator running now."""

    kube: Kube
    seen: FirstSeen
    redis_url: str
    children: Callable[[str], list[tuple[str, str, str]]]
    errors: list[str] = field(default_factory=list)

    def create(self, name: str) -> float:
        """POST one RealtimeApp; the time just before the request."""
        manifest = cluster.app_manifest(NAMESPACE, name, self.redis_url, SECRET)
        started = time.perf_counter()
        self.kube.request(
            "POST", object_path(spec.API_VERSION, spec.KIND, NAMESPACE), body=manifest
        )
        return started

    def children_seen(self, name: str) -> float | None:
        """When the last of the app's children was first seen, or None while one is missing."""
        times = [self.seen.first(kind, child) for _, kind, child in self.children(name)]
        return None if any(t is None for t in times) else max(t for t in times if t is not None)

    def workloads_available(self, name: str) -> float | None:
        """When the last of the app's Deployments first had every replica available."""
        times = [
            self.seen.available(kind, child)
            for _, kind, child in self.children(name)
            if kind == "Deployment"
        ]
        return None if any(t is None for t in times) else max(t for t in times if t is not None)

    def status_lag(self, name: str, ready: float) -> float | None:
        """From the app's Deployments all available to its status saying Ready."""
        available = self.workloads_available(name)
        return None if available is None else ready - available

    def wait(
        self, what: Callable[[str], float | None], names: Sequence[str], timeout: float
    ) -> dict[str, float]:
        """``what(name)`` of every name once all are known, or what is known at the timeout."""
        deadline = time.monotonic() + timeout
        found: dict[str, float] = {}
        while True:
            for name in names:
                if name not in found:
                    value = what(name)
                    if value is not None:
                        found[name] = value
            if len(found) == len(names) or time.monotonic() > deadline:
                return found
            time.sleep(POLL)


@dataclass
class Latencies:
    children: list[float] = field(default_factory=list)
    ready: list[float] = field(default_factory=list)
    lag: list[float] = field(default_factory=list)  # Deployments available -> app Ready

    def add_lag(self, value: float | None) -> None:
        if value is not None:
            self.lag.append(value)


def one_by_one(bench: Bench, names: Sequence[str]) -> Latencies:
    """Figure 1: create each app once the previous one is Ready."""
    out = Latencies()
    for name in names:
        started = bench.create(name)
        done = bench.wait(bench.children_seen, [name], CHILD_TIMEOUT)
        if name not in done:
            bench.errors.append(f"1: {name} lacked children after {CHILD_TIMEOUT:.0f}s")
            continue
        out.children.append(done[name] - started)
        ready = bench.wait(bench.seen.ready, [name], READY_TIMEOUT)
        if name not in ready:
            bench.errors.append(f"1: {name} not Ready after {READY_TIMEOUT:.0f}s")
            continue
        out.ready.append(ready[name] - started)
        out.add_lag(bench.status_lag(name, ready[name]))
    return out


@dataclass
class Burst:
    count: int
    create_seconds: float = 0.0
    latencies: Latencies = field(default_factory=Latencies)
    all_children: float | None = None
    all_ready: float | None = None


def burst(bench: Bench, names: Sequence[str]) -> Burst:
    """Figure 2: create the apps back to back, then wait for all children and all Ready."""
    out = Burst(len(names))
    if not names:
        return out
    starts = {name: bench.create(name) for name in names}
    first = min(starts.values())
    out.create_seconds = time.perf_counter() - first
    timeout = CHILD_TIMEOUT + len(names)
    done = bench.wait(bench.children_seen, names, timeout)
    out.latencies.children = [done[n] - starts[n] for n in names if n in done]
    if len(done) == len(names):
        out.all_children = max(done.values()) - first
    else:
        bench.errors.append(f"2: {len(names) - len(done)} apps lacked children after {timeout}s")
    timeout = READY_TIMEOUT + 2 * len(names)
    ready = bench.wait(bench.seen.ready, names, timeout)
    out.latencies.ready = [ready[n] - starts[n] for n in names if n in ready]
    for name, when in ready.items():
        out.latencies.add_lag(bench.status_lag(name, when))
    if len(ready) == len(names):
        out.all_ready = max(ready.values()) - first
    else:
        bench.errors.append(f"2: {len(names) - len(ready)} apps not Ready after {timeout}s")
    return out


@dataclass
class Steady:
    seconds: float
    rss_kib: float
    peak_kib: int
    cpu_percent: float
    reconciles_per_second: float


def steady(operator: cluster.OperatorUnderTest, seconds: float) -> Steady:
    """RSS every second for ``seconds`` (median), the peak, CPU and reconciles in that time."""
    cpu0, reconciles0, began = operator.cpu_seconds(), operator.reconciles(), time.perf_counter()
    samples = []
    while time.perf_counter() - began < seconds:
        samples.append(operator.memory().rss_kib)
        time.sleep(1.0)
    took = time.perf_counter() - began
    return Steady(
        seconds=took,
        rss_kib=statistics.median(samples),
        peak_kib=operator.memory().peak_kib,
        cpu_percent=100 * (operator.cpu_seconds() - cpu0) / took,
        reconciles_per_second=(operator.reconciles() - reconciles0) / took,
    )


@dataclass
class Restart:
    stop_seconds: float = 0.0
    exit_code: int | None = None
    leader_seconds: float = 0.0
    synced_seconds: float | None = None
    reconciled_seconds: float | None = None
    synced: float = 0.0
    wanted: int = 0
    outcomes: dict[str, float] = field(default_factory=dict)
    reconciles: float = 0.0
    steady: Steady | None = None


def restart(
    bench: Bench,
    old: cluster.OperatorUnderTest,
    start: Callable[[str], cluster.OperatorUnderTest],
    wanted: int,
    apps: int,
    steady_seconds: float,
) -> tuple[Restart, cluster.OperatorUnderTest]:
    """Figure 4: stop ``old``, start a new process, time it until every child was applied."""
    out = Restart(wanted=wanted)
    began = time.perf_counter()
    out.exit_code = old.stop()
    out.stop_seconds = time.perf_counter() - began
    began = time.perf_counter()
    new = start("bench-2")
    new.wait_leader(60.0)
    out.leader_seconds = time.perf_counter() - began
    deadline = time.monotonic() + RESTART_TIMEOUT
    while out.synced_seconds is None or out.reconciled_seconds is None:
        synced = new.metric_sum("channelworks_operator_objects_applied_total", outcome="synced")
        out.synced = synced or 0.0
        if out.synced_seconds is None and out.synced >= wanted:
            out.synced_seconds = time.perf_counter() - began
        if out.reconciled_seconds is None and new.reconciles() >= apps:
            out.reconciled_seconds = time.perf_counter() - began
        if time.monotonic() > deadline or not new.running:
            bench.errors.append(
                f"4: after {RESTART_TIMEOUT:.0f}s the new operator had applied {out.synced:.0f} "
                f"of {wanted} children, finished {new.reconciles():.0f} reconciles"
            )
            break
        time.sleep(METRICS_POLL)
    out.reconciles = new.reconciles()
    for outcome in ("created", "updated", "synced", "unchanged", "skipped", "rejected"):
        value = new.metric_sum("channelworks_operator_objects_applied_total", outcome=outcome)
        out.outcomes[outcome] = value or 0.0
    out.steady = steady(new, steady_seconds)
    return out, new


# -- the table ------------------------------------------------------------------------------


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:,.0f}"


def mib(kib: float | None) -> str:
    return "-" if kib is None else f"{kib / 1024:.1f}"


def spread(values: Sequence[float]) -> tuple[str, str, str]:
    if not values:
        return "-", "-", "-"
    return ms(percentile(values, 50)), ms(percentile(values, 99)), ms(max(values))


def render(rows: list[tuple[str, str, str, str]]) -> str:
    width = max(len(r[0]) for r in rows)
    lines = [f"{'figure':<{width}}  {'unit':>5}  {'value':>22}  notes", "-" * (width + 50)]
    for label, unit, value, note in rows:
        lines.append(f"{label:<{width}}  {unit:>5}  {value:>22}  {note}".rstrip())
    return "\n".join(lines)


def table(
    n1: Latencies, n2: Burst, base: cluster.Memory, full: Steady, r: Restart, apps: int
) -> str:
    rows: list[tuple[str, str, str, str]] = []
    for figure, how, found in (
        ("1", "one at a time", n1),
        ("2", f"{n2.count} back to back", n2.latencies),
    ):
        for label, values in (
            ("create -> children", found.children),
            ("create -> Ready", found.ready),
            ("Deployments available -> Ready", found.lag),
        ):
            p50, p99, top = spread(values)
            rows.append(
                (
                    f"{figure}  {label}, {how}",
                    "ms",
                    f"p50 {p50} / p99 {p99}",
                    f"{len(values)} apps; max {top}",
                )
            )
    rows.append(
        (
            f"2  first create -> last app's children ({n2.count})",
            "ms",
            ms(n2.all_children),
            f"the {n2.count} creates took {ms(n2.create_seconds)} ms",
        )
    )
    rows.append((f"2  first create -> last app Ready ({n2.count})", "ms", ms(n2.all_ready), ""))
    per_app = (full.rss_kib - base.rss_kib) / apps
    rows.append(
        (
            f"3  operator RSS with {apps} apps (steady)",
            "MiB",
            mib(full.rss_kib),
            f"{mib(base.rss_kib)} before the first app; {per_app:.0f} KiB more per app",
        )
    )
    rows.append((f"3  operator peak RSS (VmHWM), {apps} apps", "MiB", mib(full.peak_kib), ""))
    rows.append(
        (
            f"3  operator CPU with {apps} apps, steady",
            "%",
            f"{full.cpu_percent:.1f}",
            f"% of one core over {full.seconds:.0f}s; {full.reconciles_per_second:.1f} "
            "reconciles/s",
        )
    )
    rows.append(
        ("4  SIGTERM -> old operator exited", "ms", ms(r.stop_seconds), f"exit {r.exit_code}")
    )
    rows.append(("4  new process start -> leader", "ms", ms(r.leader_seconds), ""))
    rows.append(
        (
            f"4  new process start -> every child applied ({apps} apps)",
            "ms",
            ms(r.synced_seconds),
            f"{r.synced:.0f} of {r.wanted} children applied (outcome synced)",
        )
    )
    rows.append(
        (
            f"4  new process start -> {apps} reconciles finished",
            "ms",
            ms(r.reconciled_seconds),
            "a reconcile ends after the applies: queue stats read, status compared",
        )
    )
    outcomes = ", ".join(f"{k} {v:.0f}" for k, v in r.outcomes.items() if v)
    rows.append(
        ("4  the new process's applies", "", "", f"{outcomes}; {r.reconciles:.0f} reconciles")
    )
    if r.steady is not None:
        rows.append(
            (
                f"4  new operator RSS with {apps} apps (steady)",
                "MiB",
                mib(r.steady.rss_kib),
                f"peak {mib(r.steady.peak_kib)} MiB; CPU {r.steady.cpu_percent:.1f}% of a core",
            )
        )
    return render(rows)


# -- main ---------------------------------------------------------------------------------------


def versions(kube_dir: Path) -> str:
    v = package_version
    return (
        f"Python {platform.python_version()}, Kubernetes {kube_dir.name}, "
        f"channelworks-operator {v('channelworks-operator')}, kopf {v('kopf')}, "
        f"kubernetes client {v('kubernetes')}, redis-server {_servers.redis_server_version()}, "
        f"{os.cpu_count()} CPUs"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="The channelworks operator against a real local control plane."
    )
    parser.add_argument("--quick", action="store_true", help="10 apps one by one, 30 in all")
    parser.add_argument("--apps", type=int, help="apps in all (default 100, quick 30)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the operators' logs")
    args = parser.parse_args(argv)
    s = QUICK if args.quick else FULL
    if args.apps is not None:
        if args.apps < 1:
            parser.error(f"--apps must be at least 1, got {args.apps}")
        s = replace(s, apps=args.apps, one_by_one=min(s.one_by_one, args.apps))

    try:
        binaries = cluster.kube_binaries()
    except cluster.ControlPlaneError as error:
        log(f"operator benchmark: {error}")
        return 2
    kube_dir = binaries["kube-apiserver"].parent.parent
    began, load_before, sampler = time.perf_counter(), load(), LoadSampler()
    title = "quick" if args.quick else "full"
    log(f"operator benchmark ({title}): {versions(kube_dir)}")
    logdir = Path(tempfile.mkdtemp(prefix="channelworks-bench-operator-"))
    nodes = 1 + s.apps * PODS_PER_APP // PODS_PER_NODE
    operators: list[cluster.OperatorUnderTest] = []
    password = secrets.token_hex(16)
    try:
        with (
            cluster.ControlPlane(nodes=nodes, binaries=binaries) as plane,
            _servers.RedisServer(requirepass=password) as redis,
            plane.api_client() as api,
        ):
            log(f"control plane at {plane.server}; redis at {redis.port}; logs in {logdir}")
            kube = Kube(api, field_manager=cluster.FIELD_MANAGER)
            cluster.install_crd(kube)
            cluster.make_namespace(api, NAMESPACE)
            cluster.make_password_secret(kube, NAMESPACE, SECRET, password)
            url = f"redis://{_servers.HOST}:{redis.port}/0"

            def children(name: str) -> list[tuple[str, str, str]]:
                return cluster.expected_children(cluster.app_manifest(NAMESPACE, name, url, SECRET))

            kinds = [(api_version, kind) for api_version, kind, _ in children(app_name(0))]
            seen = FirstSeen(plane.server, plane.token, plane.ca_file, NAMESPACE, kinds)
            seen.start()
            bench = Bench(kube, seen, url, children)

            def start(identity: str) -> cluster.OperatorUnderTest:
                process = cluster.OperatorUnderTest(
                    kubeconfig=plane.kubeconfig,
                    namespace=NAMESPACE,
                    identity=identity,
                    log_dir=logdir,
                )
                operators.append(process)
                process.start()
                return process

            first = start("bench-1")
            first.wait_leader(60.0)
            time.sleep(2.0)
            base = first.memory()
            log(f"operator ready, RSS {mib(base.rss_kib)} MiB")
            names = [app_name(i) for i in range(s.apps)]
            log(f"  1 {s.one_by_one} apps one at a time")
            n1 = one_by_one(bench, names[: s.one_by_one])
            log(f"  2 {s.apps - s.one_by_one} apps back to back")
            n2 = burst(bench, names[s.one_by_one :])
            log(f"  3 steady with {s.apps} apps, {s.steady_seconds:.0f}s")
            full = steady(first, s.steady_seconds)
            log("  4 restart")
            wanted = sum(len(children(name)) for name in names)
            r, second = restart(bench, first, start, wanted, s.apps, s.steady_seconds)
            second.stop()
            seen.stop()
            watch_retries = list(seen.errors)
            errors = bench.errors
            child_list = ", ".join(f"{kind}/{name}" for _, kind, name in children(names[0]))
    except KeyboardInterrupt:
        log("interrupted; stopping every process")
        return 130
    finally:
        for process in operators:
            process.stop()
        if not args.keep_logs:
            shutil.rmtree(logdir, ignore_errors=True)

    print(
        f"Operator benchmark ({title}; {s.one_by_one} apps one at a time, {s.apps} in all) -- "
        f"{versions(kube_dir)}"
    )
    print(
        "each app: channelLayer.redis.mode external (URL + password Secret), built-in "
        f"autoscaler; its children (for {names[0]}): {child_list}"
    )
    print(
        f"load average (1/5/15 min) before -> after: {load_before} -> {load()}; "
        f"1-min samples during the run: {sampler.stop()}"
    )
    print(
        "ms, MiB, %: lower is better; p50/p99: nearest rank over the row's apps (of 20: p99 = max)"
    )
    print(table(n1, n2, base, full, r, s.apps))
    if watch_retries:
        print(f"the bench's watches reconnected {len(watch_retries)}x: {watch_retries[:3]}")
    for problem in errors:
        print(f"ERROR {problem}")
    print(f"run time {time.perf_counter() - began:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
