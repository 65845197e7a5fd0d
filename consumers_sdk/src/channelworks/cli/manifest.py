"""``channelworks manifest``: print the ``RealtimeApp`` that runs a project's worker image.

channelworks manifest --image registry.example/chat-worker:1.0 | kubectl apply -f -
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from channelworks import cli

NAME = "manifest"
HELP = "print a RealtimeApp (YAML) for a project's worker image, to kubectl apply"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from channelworks.deploy import manifest

    defaults = manifest.AppOptions(name="", image="", settings_module="")
    cli.add_project_arguments(parser)
    parser.add_argument(
        "--routing", metavar="PATH", help="routing list, when not the one the settings name"
    )
    parser.add_argument("--name", help="the app's name (default: the project's package, e.g. chat)")
    parser.add_argument(
        "-n", "--namespace", help="namespace to put in the manifest (default: none)"
    )
    parser.add_argument(
        "--image",
        help="the worker image (default: localhost/<name>-worker:latest, the tag channelworks "
        "build gives)",
    )
    parser.add_argument(
        "--pull-policy",
        choices=manifest.PULL_POLICIES,
        help="imagePullPolicy of the pods (default: Kubernetes', but IfNotPresent for a "
        "localhost/ image, which no registry has)",
    )
    parser.add_argument(
        "--interface-replicas",
        type=int,
        metavar="N",
        default=defaults.interface_replicas,
        help=f"interface server pods (default: {defaults.interface_replicas})",
    )
    parser.add_argument(
        "--min-workers",
        type=int,
        metavar="N",
        default=defaults.min_workers,
        help=f"fewest worker pods the autoscaler keeps (default: {defaults.min_workers})",
    )
    parser.add_argument(
        "--max-workers",
        type=int,
        metavar="N",
        default=defaults.max_workers,
        help=f"most worker pods the autoscaler starts (default: {defaults.max_workers})",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        metavar="N",
        default=defaults.concurrency,
        help=f"messages one worker pod handles at once (default: {defaults.concurrency})",
    )
    parser.add_argument(
        "--layer",
        choices=manifest.LAYER_MODES,
        default=defaults.layer,
        help="channel layer Redis: cluster (default; sharded, run by the operator), standalone "
        "(one pod) or external (yours, --redis-url)",
    )
    parser.add_argument("--redis-url", metavar="URL", help="the Redis of --layer external")
    parser.add_argument(
        "--host",
        dest="hosts",
        metavar="NAME",
        action="append",
        default=[],
        help="a host name clients use, set in DJANGO_ALLOWED_HOSTS after the interface "
        "Service's names; repeatable (default: none, the operator sets the Service's names and "
        "the hosts of the Ingresses that route to it)",
    )
    parser.add_argument(
        "--secret-key-secret",
        metavar="SECRET",
        help="an existing Secret with the key DJANGO_SECRET_KEY (default: none, the operator "
        "makes the Secret <name>-secret-key with a random key)",
    )
    parser.add_argument(
        "--redis-password-secret",
        metavar="SECRET",
        help="Secret (key 'password') with the Redis password",
    )


def run(args: argparse.Namespace) -> int:
    from channelworks.deploy import manifest, project

    _, settings_module = project.settings_of(
        folder=args.project, settings=args.settings, env=dict(os.environ), cwd=Path.cwd()
    )
    if args.routing is not None:
        project.check_dotted_path(args.routing, "--routing")
    name = args.name or project.app_name(settings_module)
    options = manifest.AppOptions(
        name=name,
        image=args.image or project.default_image(name),
        settings_module=settings_module,
        namespace=args.namespace,
        routing=args.routing,
        interface_replicas=args.interface_replicas,
        min_workers=args.min_workers,
        max_workers=args.max_workers,
        concurrency=args.concurrency,
        layer=args.layer,
        redis_url=args.redis_url,
        redis_password_secret=args.redis_password_secret,
        pull_policy=args.pull_policy,
        secret_key_secret=args.secret_key_secret,
        hosts=tuple(args.hosts),
    )
    sys.stdout.write(manifest.to_yaml(manifest.realtime_app(options)))
    return 0
