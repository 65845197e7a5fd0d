"""``channelworks build``: a Django project into a worker image on the worker base image.

Checks that the project's settings and routing import (in a child process), writes a
reproducible build context, builds it with docker, podman or buildah, and pushes the image when
asked. See docs/cli.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from channelworks import cli

NAME = "build"
HELP = "package a Django project into a worker image (checked, reproducible context, built)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from importlib import metadata

    from channelworks.deploy import dockerfile, engines

    base = dockerfile.default_base_image(metadata.version("channelworks"))
    project = parser.add_argument_group("the project")
    cli.add_project_arguments(project)
    project.add_argument(
        "--routing",
        metavar="PATH",
        help="dotted path of the routing list, set as CHANNELWORKS_ROUTING in the image "
        "(default: the one the settings name)",
    )
    project.add_argument(
        "--requirements",
        metavar="FILE",
        help="requirements file to install in the image (default: the project's requirements.txt)",
    )
    project.add_argument(
        "--no-check",
        dest="check",
        action="store_false",
        help="do not import the settings and routing before building",
    )
    project.add_argument(
        "--python",
        metavar="PATH",
        default=sys.executable,
        help="Python that imports the project for the check; it needs the project's "
        "requirements and channelworks (default: the one running this command)",
    )
    image = parser.add_argument_group("the image")
    image.add_argument(
        "--base",
        metavar="IMAGE",
        default=base,
        help=f"worker base image to build on (default: {base}, from Dockerfile.worker)",
    )
    image.add_argument(
        "--tag",
        metavar="IMAGE",
        help="tag of the image (default: localhost/<project>-worker:latest, what manifest names)",
    )
    image.add_argument("--push", action="store_true", help="push the image after building it")
    image.add_argument(
        "--context",
        metavar="DIR",
        help="folder to write the build context to, emptied first (default: "
        "<project>/.channelworks/build)",
    )
    image.add_argument(
        "--context-only",
        action="store_true",
        help="write the build context and stop (no engine needed); prints its folder",
    )
    engine = parser.add_argument_group("the container engine")
    engine.add_argument(
        "--engine",
        choices=(engines.AUTO, *engines.ENGINES),
        default=engines.AUTO,
        help="auto (default): docker if its daemon answers, else podman, else buildah",
    )
    engine.add_argument(
        "--engine-arg",
        dest="engine_args",
        metavar="ARG",
        action="append",
        default=[],
        help="extra argument of the engine's build command, repeatable; write it with = when "
        "it starts with a dash: --engine-arg=--runtime=runc",
    )
    engine.add_argument(
        "--push-arg",
        dest="push_args",
        metavar="ARG",
        action="append",
        default=[],
        help="extra argument of the engine's push command, repeatable "
        "(--push-arg=--tls-verify=false)",
    )


@dataclass(frozen=True)
class BuildSettings:
    """The options of one ``channelworks build``, with the environment it reads, read once."""

    epoch: int
    env: dict[str, str]
    cwd: Path


def read_settings(environ: dict[str, str], cwd: Path) -> BuildSettings:
    from channelworks.deploy import context
    from channelworks.exceptions import ConfigurationError

    raw = environ.get("SOURCE_DATE_EPOCH", "").strip()
    if raw and not raw.isdigit():
        raise ConfigurationError(
            f"SOURCE_DATE_EPOCH={raw!r} is not a whole number of seconds since 1970"
        )
    return BuildSettings(epoch=int(raw) if raw else context.DEFAULT_EPOCH, env=environ, cwd=cwd)


def say(text: str) -> None:
    print(f"channelworks build: {text}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from channelworks.deploy import checking, context, dockerfile, engines, manifest, project
    from channelworks.exceptions import ConfigurationError

    settings = read_settings(dict(os.environ), Path.cwd())
    found = project.locate(
        folder=args.project,
        settings=args.settings,
        routing=args.routing,
        requirements=args.requirements,
        env=settings.env,
        cwd=settings.cwd,
    )
    tag = args.tag or found.default_image
    if args.push and manifest.is_local_image(tag):
        raise ConfigurationError(
            f"--push needs --tag naming the registry to push to (e.g. "
            f"registry.example.com/{found.app_name}-worker:1.0): {tag} is a local name "
            "(localhost/...), which no registry serves"
        )
    if args.check:
        say(f"importing {found.settings_module} and its routing as a worker would")
        checked = checking.check(found, python=args.python, env=settings.env)
        say(f"routing {checked.routing} takes {', '.join(checked.channels)}")
    text = dockerfile.render(
        dockerfile.WorkerImage(
            settings_module=found.settings_module,
            base=args.base,
            routing=found.routing,
            app_name=found.app_name,
        )
    )
    destination = (
        settings.cwd / args.context if args.context else found.folder / ".channelworks" / "build"
    )
    written = context.write(
        project_folder=found.folder,
        requirements=found.requirements,
        dockerfile_text=text,
        destination=destination,
        epoch=settings.epoch,
    )
    say(f"wrote {written.folder} ({len(written.files)} files, {written.digest})")
    if args.context_only:
        print(written.folder)
        return 0
    engine = engines.choose(args.engine)
    say(f"building {tag} on {args.base} with {engine.name}")
    command = engines.build_command(
        engine,
        context=written.folder,
        dockerfile=written.dockerfile,
        tag=tag,
        extra=args.engine_args,
    )
    engines.run(command, f"{engine.name} build")
    if args.push:
        say(f"pushing {tag}")
        engines.run(engines.push_command(engine, tag, args.push_args), f"{engine.name} push")
    print(tag)
    return 0
