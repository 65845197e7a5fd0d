"""docs/reference/settings.md names every setting the code reads, in the section it belongs to:
the keys of ``settings.CHANNELWORKS`` and the other non-Django settings, the channel layers'
``CONFIG`` keys with the code's defaults, and the environment variables of the images, of the
project ``channelworks init`` makes and of the ``channelworks`` command."""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import global_settings

from channelworks.layers import config as layer_config
from channelworks.layers.local import LocalChannelLayer
from channelworks.layers.redis.layer import RedisChannelLayer
from tests.docs.test_docs_name_what_the_code_has import _names_read
from tools.docs.markdown import ROOT

PAGE = ROOT / "docs" / "reference" / "settings.md"
SDK = ROOT / "consumers_sdk" / "src" / "channelworks"
RUNTIMES = [ROOT / "images" / "interface" / "src", ROOT / "images" / "worker" / "src"]
TEMPLATE_SETTINGS = SDK / "deploy" / "template" / "project_name" / "settings.py-tpl"
IMAGE_CONFIGS = [
    ROOT / "images" / "interface" / "src" / "channelworks_interface" / "config.py",
    ROOT / "images" / "worker" / "src" / "channelworks_worker" / "config.py",
    SDK / "layers" / "env.py",
]
OPERATOR_CONFIG = ROOT / "operator" / "src" / "channelworks_operator" / "config.py"
OPERATOR_PREFIX = "CHANNELWORKS_OPERATOR_"
CLI_SOURCES = [*sorted((SDK / "cli").glob("*.py")), SDK / "dev" / "config.py"]
# Defaults a table shows as what None means for that key.
NONE_MEANS = {"channel_capacity": "{}", "hosts": '[("localhost", 6379)]'}


def sections() -> dict[str, str]:
    """The page's ``## `` sections by heading."""
    parts = re.split(r"^## (.+)$", PAGE.read_text(), flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def section(starting: str) -> str:
    found = [text for heading, text in sections().items() if heading.startswith(starting)]
    assert len(found) == 1, f"one section of {PAGE.name} starting {starting!r}, found {found}"
    return found[0]


def table_rows(text: str) -> dict[str, list[str]]:
    """First cell (without backticks) -> the row's other cells, for every table row of ``text``."""
    rows: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        rows.setdefault(cells[0].strip("`"), cells[1:])
    return rows


def python_files(*folders: Path) -> Iterator[Path]:
    for folder in folders:
        yield from sorted(folder.rglob("*.py"))


def _shown(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def _defaults(function: Callable[..., Any]) -> dict[str, str]:
    return {
        name: NONE_MEANS.get(name, "None")
        if parameter.default is None
        else _shown(parameter.default)
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }


def test_every_layer_config_key_is_shown_with_the_code_default() -> None:
    text = section("Channel layer")
    common, redis, local = (
        table_rows(part) for part in re.split(r"^`\w+` also takes", text, flags=re.M)
    )
    expected = [
        (common, _defaults(layer_config._validated)),
        (redis, _defaults(RedisChannelLayer.__init__)),
        (local, {k: v for k, v in _defaults(LocalChannelLayer.__init__).items() if k != "hosts"}),
    ]
    assert set(layer_config.LAYER_KEYS) == set(common)
    for rows, defaults in expected:
        assert set(defaults) <= set(rows), sorted(set(defaults) - set(rows))
        for key, default in defaults.items():
            assert rows[key][0].startswith(f"`{default}`"), (key, default, rows[key][0])


def _channelworks_keys(tree: ast.Module) -> set[str]:
    """``K`` of ``x.get("K")`` and ``x["K"]``, ``x = getattr(settings, "CHANNELWORKS", ...)``."""
    holders: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and "'CHANNELWORKS'" in ast.dump(node.value):
            holders.update(t.id for t in node.targets if isinstance(t, ast.Name))
    keys: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
            if node.value.id in holders and isinstance(node.slice, ast.Constant):
                keys.add(str(node.slice.value))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in holders
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            keys.add(str(node.args[0].value))
    return keys


def _settings_read(tree: ast.Module) -> set[str]:
    """``NAME`` of every ``getattr(settings, "NAME", ...)``."""
    return {
        str(node.args[1].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "getattr"
        and len(node.args) >= 2
        and isinstance(node.args[0], ast.Name)
        and node.args[0].id == "settings"
        and isinstance(node.args[1], ast.Constant)
    }


def test_every_django_setting_of_ours_is_listed() -> None:
    keys: set[str] = set()
    settings: set[str] = set()
    for path in python_files(SDK, *RUNTIMES):
        tree = ast.parse(path.read_text())
        keys |= _channelworks_keys(tree)
        settings |= _settings_read(tree)
    assert {"ROUTING", "ROUTINGS", "SERVE_STATIC"} <= keys  # what the scan must find
    text = section("Django settings")
    rows = table_rows(text)
    named = {row.split("[")[0] for row in rows} | set(re.findall(r"`([A-Z][A-Z_]+)`", text))
    missing = sorted(
        f'CHANNELWORKS["{key}"]' for key in keys if f'CHANNELWORKS["{key}"]' not in rows
    )
    ours = {name for name in settings if not hasattr(global_settings, name)}
    assert "CHANNEL_SESSION_ENGINE" in ours
    missing += sorted(ours - named)
    assert not missing, f"{PAGE.name} lacks {missing}"


@pytest.mark.parametrize(
    ("heading", "names"),
    [
        (
            "Environment variables of the interface and worker images",
            lambda: set().union(*(_names_read(ast.parse(p.read_text())) for p in IMAGE_CONFIGS)),
        ),
        (
            "Environment variables of the operator image",
            lambda: {
                name.removeprefix(OPERATOR_PREFIX)
                for name in _names_read(ast.parse(OPERATOR_CONFIG.read_text()))
            },
        ),
        (
            "Environment variables of a project made by",
            lambda: set(
                re.findall(r"os\.environ(?:\.get\(|\[)\"([A-Z_]+)\"", TEMPLATE_SETTINGS.read_text())
            ),
        ),
        (
            "Environment variables of the `channelworks` command",
            lambda: {
                name
                for path in CLI_SOURCES
                for name in re.findall(
                    r"(?:environ|env)\.get\(\s*\"([A-Z][A-Z0-9_]+)\"", path.read_text()
                )
            },
        ),
    ],
)
def test_every_environment_variable_read_is_listed(
    heading: str, names: Callable[[], set[str]]
) -> None:
    read = names()
    assert read, f"found no variables for {heading!r}: the scan is broken"
    text = section(heading)
    listed = set(table_rows(text)) | set(re.findall(r"`([A-Z][A-Z0-9_]+)`", text))
    assert not read - listed, f"{heading}: {sorted(read - listed)} missing from {PAGE.name}"
