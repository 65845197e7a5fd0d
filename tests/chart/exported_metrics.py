"""Which Prometheus metrics the code exports, read from the source (no process is started).

Every metric is made with prometheus_client: a ``Counter``/``Gauge``/``Histogram``/``Summary``/
``Info``/``Enum`` (or a ``*MetricFamily`` in a custom collector) whose first argument is the
name. Reading the syntax tree of each component's package finds every definition, the samples it
exposes (a Counter ``x`` is scraped as ``x_total``, a Histogram as ``x_bucket``/``x_sum``/
``x_count``...), its label names, and the class or function that holds it.

A definition only reaches Prometheus when a running component builds that holder: so a metric
counts as *exported* only when its holder is also called from another module of the components
(``metrics.WorkerMetrics(registry)`` in the worker's ``main``), itself or through a holder of its
module that builds it. A metric class that nothing instantiates is reported as defined but not
wired.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The packages of the processes that serve /metrics: interface, worker (and the SDK it runs),
# operator.
SOURCE_ROOTS = (
    ROOT / "images" / "interface" / "src",
    ROOT / "images" / "worker" / "src",
    ROOT / "consumers_sdk" / "src",
    ROOT / "operator" / "src",
)

# Constructor name -> suffixes of the samples Prometheus scrapes (after _total is normalised).
_SAMPLES: dict[str, tuple[str, ...]] = {
    "Counter": ("_total", "_created"),
    "CounterMetricFamily": ("_total", "_created"),
    "Gauge": ("",),
    "GaugeMetricFamily": ("",),
    "Histogram": ("_bucket", "_sum", "_count", "_created"),
    "HistogramMetricFamily": ("_bucket", "_sum", "_count", "_created"),
    "Summary": ("", "_sum", "_count", "_created"),
    "SummaryMetricFamily": ("", "_sum", "_count", "_created"),
    "Info": ("_info",),
    "InfoMetricFamily": ("_info",),
    "Enum": ("",),
    "StateSetMetricFamily": ("",),
}
_COUNTERS = {"Counter", "CounterMetricFamily"}


@dataclass(frozen=True)
class Definition:
    """One metric made in the code."""

    name: str  # as written (prometheus_client strips a Counter's _total)
    kind: str  # Counter, Gauge, ...
    labels: tuple[str, ...]
    path: Path
    line: int
    holder: str  # the class (or top-level function) that makes it

    @property
    def family(self) -> str:
        if self.kind in _COUNTERS and self.name.endswith("_total"):
            return self.name[: -len("_total")]
        return self.name

    @property
    def samples(self) -> tuple[str, ...]:
        return tuple(self.family + suffix for suffix in _SAMPLES[self.kind])

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line} ({self.holder})"


def _callee(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def _string(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _labels(call: ast.Call, kind: str) -> tuple[str, ...]:
    # Counter(name, doc, labelnames); *MetricFamily(name, doc, value=None, labels=None).
    node: ast.expr | None = None
    for keyword in call.keywords:
        if keyword.arg in ("labelnames", "labels"):
            node = keyword.value
    if node is None:
        position = 3 if kind.endswith("MetricFamily") else 2
        if len(call.args) > position:
            node = call.args[position]
    if isinstance(node, ast.List | ast.Tuple):
        return tuple(value for item in node.elts if (value := _string(item)) is not None)
    return ()


def _walk_with_holder(tree: ast.Module) -> Iterator[tuple[ast.Call, str]]:
    """Every call in the module, with the top-level class or function it sits in."""
    for top in tree.body:
        holder = getattr(top, "name", "<module>")
        for node in ast.walk(top):
            if isinstance(node, ast.Call):
                yield node, holder


def python_files() -> Iterator[Path]:
    for root in SOURCE_ROOTS:
        yield from sorted(root.rglob("*.py"))


@functools.cache
def _parsed(path: Path) -> ast.Module:
    """Each file is parsed once per test process (the callers of every metric's holder are
    looked up in every file: parsing them again for each was most of the chart tests' time)."""
    return ast.parse(path.read_text(), filename=str(path))


def definitions() -> list[Definition]:
    found: list[Definition] = []
    for path in python_files():
        tree = _parsed(path)
        for call, holder in _walk_with_holder(tree):
            kind = _callee(call)
            if kind not in _SAMPLES:
                continue
            first = call.args[0] if call.args else None
            for keyword in call.keywords:
                if keyword.arg == "name":
                    first = keyword.value
            name = _string(first)
            if name is None:
                continue
            labels = _labels(call, kind)
            found.append(Definition(name, kind, labels, path, call.lineno, holder))
    return found


def module_name(path: Path) -> str:
    """``channelworks_worker.metrics`` for ``images/worker/src/channelworks_worker/metrics.py``."""
    for root in SOURCE_ROOTS:
        if path.is_relative_to(root):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            return ".".join(parts)
    raise ValueError(f"{path} is not under a component's source root")


def _imports(tree: ast.Module, path: Path, module: str, holder: str) -> bool:
    """Whether the file imports ``module`` or ``holder`` from it (relative imports included)."""
    here = module_name(path).split(".")
    if path.name != "__init__.py":
        here.pop()
    parent, _, last = module.rpartition(".")
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name == module for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level else []
            source = ".".join([*base, *(node.module or "").split(".")]).strip(".")
            names = {alias.name for alias in node.names}
            if (source == module and holder in names) or (source == parent and last in names):
                return True
    return False


@functools.cache
def callers(holder: str, defined_in: Path) -> list[str]:
    """Places in other modules of the components that build ``holder``: that import and call
    ``holder(...)``, or, for a holder its own module builds inside another one (a collector made
    in ``InterfaceMetrics.__init__``), the places that build that one."""
    return _callers(holder, defined_in, frozenset())


def _callers(holder: str, defined_in: Path, seen: frozenset[str]) -> list[str]:
    module = module_name(defined_in)
    places: list[str] = []
    for path in python_files():
        if path == defined_in:
            continue
        tree = _parsed(path)
        if not _imports(tree, path, module, holder):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _callee(node) == holder:
                places.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    seen = seen | {holder}
    builders = {
        outer
        for call, outer in _walk_with_holder(_parsed(defined_in))
        if _callee(call) == holder and outer not in seen
    }
    for builder in sorted(builders):
        places.extend(_callers(builder, defined_in, seen))
    return places


@dataclass(frozen=True)
class Catalogue:
    """Sample name -> its definitions (one name may be made by several components)."""

    by_sample: dict[str, list[Definition]]

    def wired(self, sample: str) -> list[tuple[Definition, list[str]]]:
        """The definitions of ``sample`` with the places that build their holder."""
        return [(d, callers(d.holder, d.path)) for d in self.by_sample.get(sample, [])]

    def labels(self, sample: str) -> set[str]:
        return {label for d in self.by_sample.get(sample, []) for label in d.labels}


def catalogue() -> Catalogue:
    by_sample: dict[str, list[Definition]] = {}
    for definition in definitions():
        for sample in definition.samples:
            by_sample.setdefault(sample, []).append(definition)
    return Catalogue(by_sample)
