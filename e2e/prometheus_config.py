"""A Prometheus configuration made from the monitoring objects in the cluster, the way the
Prometheus Operator turns them into scrape jobs (pure: manifests in, dicts out).

- a ``ServiceMonitor`` becomes a job on ``kubernetes_sd`` role ``endpoints``: keep the endpoints of
  the Services its selector matches, on the named port; ``job`` is the Service's name;
- a ``PodMonitor`` becomes a job on role ``pod``: keep the pods its selector matches, on the named
  container port; ``job`` is ``<namespace>/<name>``;
- every target gets ``namespace``, ``pod``, ``container`` (and ``service``, ``endpoint``) labels,
  which the chart's dashboard and alerts select on;
- a ``PrometheusRule``'s ``spec.groups`` is a rule file as it stands, except that ``for`` can be
  shortened (``rule_file(..., pending=...)``) so that an alert fires within a test's time.

Only what the chart and the operator use is handled: ``matchLabels``, ``matchExpressions`` with
``In``/``NotIn``/``Exists``/``DoesNotExist``, ``namespaceSelector.matchNames``/``any``, endpoint
``port``/``path``/``interval``/``scrapeTimeout``/``relabelings``/``metricRelabelings``.
"""

from __future__ import annotations

import copy
import re
from typing import Any

Manifest = dict[str, Any]
_INVALID_LABEL_CHARACTER = re.compile(r"[^a-zA-Z0-9_]")


def _sanitize(label: str) -> str:
    """A Kubernetes label name as kubernetes_sd spells it in ``__meta_*`` labels."""
    return _INVALID_LABEL_CHARACTER.sub("_", label)


def _selector_relabelings(selector: Manifest, role: str) -> list[Manifest]:
    """``keep`` rules that let through only the objects a label selector matches."""
    meta = f"__meta_kubernetes_{role}_label_"
    present = f"__meta_kubernetes_{role}_labelpresent_"
    rules: list[Manifest] = []
    for key, value in sorted((selector.get("matchLabels") or {}).items()):
        name = _sanitize(key)
        rules.append(
            {
                "action": "keep",
                "source_labels": [meta + name, present + name],
                "regex": f"({re.escape(str(value))});true",
            }
        )
    for expression in selector.get("matchExpressions") or []:
        name, operator = _sanitize(expression["key"]), expression["operator"]
        values = "|".join(re.escape(str(value)) for value in expression.get("values") or [])
        if operator == "In":
            rules.append({"action": "keep", "source_labels": [meta + name], "regex": f"({values})"})
        elif operator == "NotIn":
            rules.append({"action": "drop", "source_labels": [meta + name], "regex": f"({values})"})
        elif operator == "Exists":
            rules.append({"action": "keep", "source_labels": [present + name], "regex": "true"})
        elif operator == "DoesNotExist":
            rules.append({"action": "drop", "source_labels": [present + name], "regex": "true"})
        else:
            raise ValueError(f"unknown label selector operator {operator!r}")
    return rules


def _namespaces(monitor: Manifest) -> dict[str, Any] | None:
    """kubernetes_sd's ``namespaces``; None means every namespace."""
    selector = monitor["spec"].get("namespaceSelector") or {}
    if selector.get("any"):
        return None
    names = selector.get("matchNames") or [monitor["metadata"]["namespace"]]
    return {"names": list(names)}


def _relabel(rules: list[Manifest] | None) -> list[Manifest]:
    """Prometheus Operator RelabelConfigs (camelCase) as Prometheus relabel_configs."""
    keys = {
        "sourceLabels": "source_labels",
        "targetLabel": "target_label",
        "separator": "separator",
        "regex": "regex",
        "modulus": "modulus",
        "replacement": "replacement",
        "action": "action",
    }
    converted: list[Manifest] = []
    for rule in rules or []:
        item = {keys[key]: value for key, value in rule.items() if key in keys}
        if "action" in item:
            item["action"] = str(item["action"]).lower()
        converted.append(item)
    return converted


def _copy_label(source: str, target: str) -> Manifest:
    return {"source_labels": [source], "target_label": target}


def _job(
    name: str,
    role: str,
    monitor: Manifest,
    endpoint: Manifest,
    kubeconfig: str,
    rules: list[Manifest],
) -> Manifest:
    sd: Manifest = {"role": role, "kubeconfig_file": kubeconfig}
    namespaces = _namespaces(monitor)
    if namespaces is not None:
        sd["namespaces"] = namespaces
    job: Manifest = {
        "job_name": name,
        "honor_labels": bool(endpoint.get("honorLabels", False)),
        "metrics_path": endpoint.get("path", "/metrics"),
        "kubernetes_sd_configs": [sd],
        "relabel_configs": [*rules, *_relabel(endpoint.get("relabelings"))],
    }
    if endpoint.get("interval"):
        job["scrape_interval"] = endpoint["interval"]
    if endpoint.get("scrapeTimeout"):
        job["scrape_timeout"] = endpoint["scrapeTimeout"]
    if endpoint.get("metricRelabelings"):
        job["metric_relabel_configs"] = _relabel(endpoint["metricRelabelings"])
    return job


def service_monitor_jobs(monitor: Manifest, kubeconfig: str) -> list[Manifest]:
    """The scrape jobs of one ServiceMonitor (one per endpoint)."""
    meta, spec = monitor["metadata"], monitor["spec"]
    jobs = []
    for index, endpoint in enumerate(spec["endpoints"]):
        rules = [
            *_selector_relabelings(spec.get("selector") or {}, "service"),
            {
                "action": "keep",
                "source_labels": ["__meta_kubernetes_endpoint_port_name"],
                "regex": re.escape(endpoint["port"]),
            },
            _copy_label("__meta_kubernetes_namespace", "namespace"),
            _copy_label("__meta_kubernetes_service_name", "service"),
            _copy_label("__meta_kubernetes_pod_name", "pod"),
            _copy_label("__meta_kubernetes_pod_container_name", "container"),
            _copy_label("__meta_kubernetes_service_name", "job"),
            {"target_label": "endpoint", "replacement": endpoint["port"]},
        ]
        name = f"serviceMonitor/{meta['namespace']}/{meta['name']}/{index}"
        jobs.append(_job(name, "endpoints", monitor, endpoint, kubeconfig, rules))
    return jobs


def pod_monitor_jobs(monitor: Manifest, kubeconfig: str) -> list[Manifest]:
    """The scrape jobs of one PodMonitor (one per podMetricsEndpoint)."""
    meta, spec = monitor["metadata"], monitor["spec"]
    jobs = []
    for index, endpoint in enumerate(spec["podMetricsEndpoints"]):
        rules = [
            {
                "action": "drop",
                "source_labels": ["__meta_kubernetes_pod_phase"],
                "regex": "(Failed|Succeeded)",
            },
            *_selector_relabelings(spec.get("selector") or {}, "pod"),
            {
                "action": "keep",
                "source_labels": ["__meta_kubernetes_pod_container_port_name"],
                "regex": re.escape(endpoint["port"]),
            },
            _copy_label("__meta_kubernetes_namespace", "namespace"),
            _copy_label("__meta_kubernetes_pod_name", "pod"),
            _copy_label("__meta_kubernetes_pod_container_name", "container"),
            {"target_label": "job", "replacement": f"{meta['namespace']}/{meta['name']}"},
            {"target_label": "endpoint", "replacement": endpoint["port"]},
        ]
        name = f"podMonitor/{meta['namespace']}/{meta['name']}/{index}"
        jobs.append(_job(name, "pod", monitor, endpoint, kubeconfig, rules))
    return jobs


def scrape_config(
    monitors: list[Manifest],
    kubeconfig: str,
    *,
    static_targets: dict[str, str] | None = None,
    interval: str = "5s",
    rule_files: list[str] | None = None,
) -> Manifest:
    """The whole prometheus.yml: a job per monitor endpoint, plus static jobs
    (``job name -> host:port``, scraped with ``honor_labels``, as kube-state-metrics is)."""
    jobs: list[Manifest] = []
    for monitor in monitors:
        if monitor["kind"] == "ServiceMonitor":
            jobs += service_monitor_jobs(monitor, kubeconfig)
        elif monitor["kind"] == "PodMonitor":
            jobs += pod_monitor_jobs(monitor, kubeconfig)
        else:
            raise ValueError(f"not a monitor: {monitor['kind']}")
    for name, target in sorted((static_targets or {}).items()):
        jobs.append(
            {"job_name": name, "honor_labels": True, "static_configs": [{"targets": [target]}]}
        )
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": list(rule_files or []),
        "scrape_configs": jobs,
    }


def rule_file(rules: list[Manifest], *, pending: str | None = None) -> Manifest:
    """The groups of PrometheusRules as one rule file; ``pending`` replaces every ``for``."""
    groups: list[Manifest] = []
    for rule_object in rules:
        for group in rule_object["spec"]["groups"]:
            copied = copy.deepcopy(group)
            if pending is not None:
                for rule in copied["rules"]:
                    if "for" in rule:
                        rule["for"] = pending
            groups.append(copied)
    return {"groups": groups}
