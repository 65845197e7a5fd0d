"""skaffold.yaml is one skaffold accepts: valid against skaffold's own JSON schema for its
apiVersion (a broken copy is not), and everything it names exists: the Dockerfiles, the chart,
the chart values it sets, the manifests, the images its templates and the RealtimeApp use."""

from __future__ import annotations

import copy
import json
import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e_local.skaffold_schema import ROOT, Schema, SchemaUnavailable, fetch

SKAFFOLD_FILE = ROOT / "skaffold.yaml"
CHART = ROOT / "charts" / "channelworks"
VALUES_SCHEMA = CHART / "values.schema.json"
_TEMPLATE_IMAGE = re.compile(r"\{\{\s*\.IMAGE_(?:REPO|TAG|DIGEST)_([A-Za-z0-9_]+)\s*\}\}")

Config = dict[str, Any]
_CHAT = 3  # the index of the chat example's artifact, a docker one


@pytest.fixture(scope="module")
def schema() -> Schema:
    try:
        return fetch()
    except SchemaUnavailable as error:
        pytest.fail(str(error))


def _config() -> Config:
    documents = [doc for doc in yaml.safe_load_all(SKAFFOLD_FILE.read_text()) if doc]
    assert len(documents) == 1, "skaffold.yaml holds one configuration"
    config: Config = documents[0]
    return config


def test_skaffold_yaml_is_valid_for_its_api_version(schema: Schema) -> None:
    config = _config()
    assert config["apiVersion"] == schema.api_version, (
        f"skaffold.yaml says {config['apiVersion']}; the pinned skaffold "
        f"(tools/skaffold/fetch-schema.sh) reads {schema.api_version}"
    )
    assert config["kind"] == "Config"
    problems = schema.problems(config)
    assert not problems, "skaffold.yaml does not match skaffold's schema:\n" + "\n".join(problems)


def _misspell_a_docker_field(config: Config) -> None:
    config["build"]["artifacts"][_CHAT]["docker"]["dockerfil"] = "Dockerfile"


def _concurrency_as_text(config: Config) -> None:
    config["build"]["local"]["concurrency"] = "one"


def _profile_without_a_name(config: Config) -> None:
    del config["profiles"][0]["name"]


def _chart_instead_of_chart_path(config: Config) -> None:
    release = config["deploy"]["helm"]["releases"][0]
    release["chart"] = release.pop("chartPath")


BREAKAGES: dict[str, tuple[Callable[[Config], None], str]] = {
    "misspelt field": (
        _misspell_a_docker_field,
        f"build/artifacts/{_CHAT}/docker: Additional properties are not allowed ('dockerfil' was",
    ),
    "wrong type": (_concurrency_as_text, "build/local/concurrency: 'one' is not of type 'integer'"),
    "missing required field": (_profile_without_a_name, "profiles/0: 'name' is a required"),
    "field of another tool": (
        _chart_instead_of_chart_path,
        "deploy/helm/releases/0: Additional properties are not allowed ('chart' was",
    ),
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_a_broken_skaffold_yaml_is_rejected_naming_the_field(schema: Schema, breakage: str) -> None:
    """The check can fail: each broken copy of the real file fails it, at the broken field."""
    config = copy.deepcopy(_config())
    break_it, expected = BREAKAGES[breakage]
    break_it(config)
    problems = schema.problems(config)
    assert problems, f"a skaffold.yaml with a {breakage} passed the schema"
    assert any(problem.startswith(expected) for problem in problems), problems


def _artifact_files(artifact: dict[str, Any]) -> list[Path]:
    """The Dockerfile and build script an artifact needs, and its watched dependencies."""
    context = ROOT / artifact.get("context", ".")
    if "docker" in artifact:
        return [context / artifact["docker"].get("dockerfile", "Dockerfile")]
    custom = artifact["custom"]
    command = shlex.split(custom["buildCommand"])
    assert command[0] == "bash", "the build command runs a script of the repository"
    files = [context / argument for argument in command[1:]]
    for pattern in custom["dependencies"]["paths"]:
        matches = list(context.glob(pattern))
        files.extend(matches or [context / pattern])
    return files


def test_every_file_it_builds_and_deploys_exists() -> None:
    config = _config()
    missing = [
        f"{artifact['image']}: {path.relative_to(ROOT)}"
        for artifact in config["build"]["artifacts"]
        for path in _artifact_files(artifact)
        if not path.exists()
    ]
    for release in config["deploy"]["helm"]["releases"]:
        if not (ROOT / release["chartPath"] / "Chart.yaml").is_file():
            missing.append(f"chart {release['chartPath']}")
    for pattern in config["manifests"]["rawYaml"]:
        if not list(ROOT.glob(pattern)):
            missing.append(f"manifests {pattern}")
    assert not missing, f"skaffold.yaml names what is not in the repository: {missing}"


def test_the_image_build_script_prepares_the_wheelhouse_the_dockerfiles_copy() -> None:
    script = (ROOT / "tools" / "skaffold" / "build-image.sh").read_text()
    assert 'scripts/build-images.sh" --wheelhouse-only' in script
    builder = (ROOT / "scripts" / "build-images.sh").read_text()
    assert "--wheelhouse-only) wheelhouse_only=true" in builder, "the option the script calls"
    for artifact in _config()["build"]["artifacts"]:
        if "custom" in artifact:
            dockerfile = ROOT / shlex.split(artifact["custom"]["buildCommand"])[-1]
            assert "build/images/" in dockerfile.read_text(), dockerfile


def test_required_images_and_image_templates_name_built_artifacts() -> None:
    config = _config()
    images = [artifact["image"] for artifact in config["build"]["artifacts"]]
    template_names = {image.replace("/", "_").replace("-", "_") for image in images}
    for artifact in config["build"]["artifacts"]:
        for required in artifact.get("requires", []):
            assert required["image"] in images, required
            assert images.index(required["image"]) < images.index(artifact["image"])
    templates = json.dumps(config)
    used = set(_TEMPLATE_IMAGE.findall(templates))
    assert used, "the chart gets the images skaffold built"
    assert used <= template_names, (
        f"templates of images that are not built: {used - template_names}"
    )


def _schema_node(schema: dict[str, Any], dotted: str) -> dict[str, Any] | None:
    node: dict[str, Any] | None = schema
    for key in dotted.split("."):
        node = (node or {}).get("properties", {}).get(key)
    return node


def _all_releases(config: Config) -> list[dict[str, Any]]:
    releases = list(config["deploy"]["helm"]["releases"])
    for profile in config.get("profiles", []):
        releases += profile.get("deploy", {}).get("helm", {}).get("releases", [])
    return releases


def test_every_chart_value_it_sets_is_one_the_chart_has() -> None:
    values_schema = json.loads(VALUES_SCHEMA.read_text())
    config = _config()
    keys = [
        key
        for release in _all_releases(config)
        for block in ("setValues", "setValueTemplates")
        for key in release.get(block, {})
    ]
    for profile in config.get("profiles", []):
        for patch in profile.get("patches", []):
            prefix = "/deploy/helm/releases/0/setValues/"
            if patch["path"].startswith(prefix):
                keys.append(patch["path"].removeprefix(prefix))
    unknown = [key for key in keys if _schema_node(values_schema, key) is None]
    assert keys and not unknown, f"values charts/channelworks does not have: {unknown}"


def test_the_kind_profile_loads_images_into_kind_and_its_patches_apply() -> None:
    config = _config()
    (kind,) = [profile for profile in config["profiles"] if profile["name"] == "kind"]
    assert kind["build"]["local"]["push"] is False, "kind loads images; nothing is pushed"
    assert kind["deploy"]["kubeContext"] == "kind-channelworks"
    assert {"kubeContext": "kind-channelworks"} in kind["activation"]
    for patch in kind.get("patches", []):
        parent_path = patch["path"].rsplit("/", 1)[0]
        node: Any = config
        for part in parent_path.strip("/").split("/"):
            node = node[int(part)] if isinstance(node, list) else node[part]
        assert isinstance(node, dict | list), f"{patch['path']} does not point into the config"


def test_skaffold_rewrites_and_loads_the_images_the_realtimeapp_names() -> None:
    config = _config()
    (manifest_file,) = [m for m in config["manifests"]["rawYaml"] if m.endswith("realtimeapp.yaml")]
    app = yaml.safe_load((ROOT / manifest_file).read_text())
    built = {artifact["image"]: artifact for artifact in config["build"]["artifacts"]}
    named = [app["spec"]["image"], app["spec"]["interface"]["image"]]
    repositories = [image.rsplit(":", 1)[0] for image in named]
    assert repositories == ["channelworks/chat-example", "channelworks/interface"]
    assert all(repository in built for repository in repositories), f"not built: {named}"
    chat = built["channelworks/chat-example"]
    assert chat["requires"][0]["image"] == "channelworks/worker", "built on the worker image"
    # Without this skaffold neither rewrites a custom resource's images nor loads them into kind.
    allowed = {item["groupKind"]: item for item in config["resourceSelector"]["allow"]}
    assert allowed["RealtimeApp.channelworks.dev"]["image"] == [".*"]
