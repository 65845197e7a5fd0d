"""``channelworks status NAME``: how a running RealtimeApp is doing, from its status.

Reads the app with the Kubernetes client and the kubeconfig (``--kubeconfig``, else
``$KUBECONFIG``, else ``~/.kube/config``); needs the ``kubernetes`` package (docs/cli.md#install).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys

NAME = "status"
HELP = "summarise a RealtimeApp on the cluster: conditions, replicas, queue depth, endpoint"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the RealtimeApp's name")
    parser.add_argument(
        "-n",
        "--namespace",
        help="its namespace (default: the kubeconfig context's, else default)",
    )
    parser.add_argument(
        "--kubeconfig",
        metavar="FILE",
        help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)",
    )
    parser.add_argument("--context", help="kubeconfig context (default: the current one)")


def run(args: argparse.Namespace) -> int:
    from channelworks.deploy import cluster, layer_diagnosis, summary

    kubeconfig = args.kubeconfig or os.environ.get("KUBECONFIG") or None
    connection = cluster.connect(kubeconfig, args.context)
    namespace = args.namespace or connection.namespace
    app = cluster.read_app(connection, args.name, namespace)
    reasons: list[str] = []
    if summary.layer_needs_a_reason(app):
        found = cluster.read_layer_objects(connection, args.name, namespace)
        reasons = layer_diagnosis.reasons(found) if found is not None else []
    sys.stdout.write(summary.summarize(app, dt.datetime.now(dt.UTC), reasons))
    return 0
