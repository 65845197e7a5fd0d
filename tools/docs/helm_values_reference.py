"""Generate docs/reference/helm-values.md: every value of the Helm chart.

Sources: charts/channelworks/values.schema.json (the keys, their types and bounds),
charts/channelworks/values.yaml (the defaults and the comment above each key) and the ``fail``
checks of charts/channelworks/templates/_helpers.tpl. A key of the schema without a comment in
values.yaml, or a key of values.yaml the schema does not describe, stops the generator.

    python -m tools.docs.helm_values_reference            # write the page
    python -m tools.docs.helm_values_reference --check    # exit 1 when the page is stale
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from tools.docs import markdown
from tools.docs.markdown import ROOT, ReferenceError, code

CHART = ROOT / "charts" / "channelworks"
VALUES = CHART / "values.yaml"
SCHEMA = CHART / "values.schema.json"
HELPERS = CHART / "templates" / "_helpers.tpl"
OUTPUT = ROOT / "docs" / "reference" / "helm-values.md"
# Keys of the schema that values.yaml leaves unset on purpose.
UNSET_ON_PURPOSE = frozenset({"global"})
_KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][A-Za-z0-9_]*):")
_COMMENT_LINE = re.compile(r"^(?P<indent> *)#(?: -- | ?)(?P<text>.*)$")
_FAIL = re.compile(r'(?:fail \(printf|required) "(?P<message>(?:[^"\\]|\\.)*)"')
Node = Mapping[str, Any]


@dataclass(frozen=True)
class Value:
    path: str
    schema: Node
    default: Any
    has_default: bool
    comment: str


def comments(text: str) -> dict[str, str]:
    """Dotted key path -> the comment block right above it (same indentation, no blank line)."""
    found: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    block: list[tuple[int, str]] = []
    for line in text.splitlines():
        if not line.strip():
            block = []
            continue
        comment = _COMMENT_LINE.match(line)
        if comment:
            block.append((len(comment["indent"]), comment["text"].strip()))
            continue
        key = _KEY_LINE.match(line)
        if key is None:
            block = []
            continue
        indent = len(key["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, key["key"]))
        path = ".".join(name for _, name in stack)
        own = [text for level, text in block if level == indent]
        if own:
            found[path] = " ".join(own)
        block = []
    return found


def _lookup(values: Any, path: str) -> tuple[bool, Any]:
    node = values
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _schema_paths(node: Node, prefix: str = "") -> Iterator[tuple[str, Node]]:
    for key, child in (node.get("properties") or {}).items():
        path = f"{prefix}{key}"
        yield path, child
        yield from _schema_paths(child, f"{path}.")


def _value_paths(values: Any, schema: Node, prefix: str = "") -> Iterator[str]:
    """Keys of values.yaml inside blocks the schema describes key by key."""
    if not isinstance(values, Mapping) or "properties" not in schema:
        return
    for key, value in values.items():
        path = f"{prefix}{key}"
        yield path
        yield from _value_paths(value, schema["properties"].get(key, {}), f"{path}.")


def collect(schema: Node, values: Mapping[str, Any], notes: Mapping[str, str]) -> list[Value]:
    described = dict(_schema_paths(schema))
    for path in _value_paths(values, schema):
        if path not in described:
            raise ReferenceError(
                f"{VALUES.name} sets {path}, which {SCHEMA.name} does not describe"
            )
    found = []
    for path, node in described.items():
        has_default, default = _lookup(values, path)
        comment = notes.get(path, "")
        if path not in UNSET_ON_PURPOSE and not comment:
            raise ReferenceError(f"{path} has no comment above it in {VALUES.name}")
        if path not in UNSET_ON_PURPOSE and not has_default:
            raise ReferenceError(f"{path} is in {SCHEMA.name} but has no default in {VALUES.name}")
        found.append(Value(path, node, default, has_default, comment))
    return found


def type_of(node: Node) -> str:
    kind = node.get("type", "any")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind == "array":
        item = node.get("items") or {}
        return "[]" + str(item.get("type", "any"))
    if kind == "object" and isinstance(node.get("additionalProperties"), Mapping):
        return "map[string]" + str(node["additionalProperties"].get("type", "any"))
    return str(kind)


def validation_of(node: Node) -> str:
    parts: list[str] = []
    if "enum" in node:
        parts.append("one of " + ", ".join(code(value) for value in node["enum"]))
    item_enum = (node.get("items") or {}).get("enum")
    if item_enum:
        parts.append("items one of " + ", ".join(code(value) for value in item_enum))
    if node.get("uniqueItems"):
        parts.append("no duplicates")
    for key, word in (
        ("minimum", "at least"),
        ("exclusiveMinimum", "more than"),
        ("maximum", "at most"),
        ("minLength", "length at least"),
        ("maxLength", "length at most"),
    ):
        if key in node:
            parts.append(f"{word} {node[key]}")
    if "pattern" in node:
        parts.append(f"matches {code(node['pattern'])}")
    if node.get("required"):
        parts.append("needs " + ", ".join(code(name) for name in node["required"]))
    if node.get("additionalProperties") is False:
        parts.append("no other keys")
    return "; ".join(parts)


def _default(value: Value) -> str:
    if not value.has_default:
        return "(unset)"
    if value.schema.get("properties"):
        return "(see below)"
    return code(value.default)


def render_checks(text: str) -> list[str]:
    """The chart's own ``fail`` and ``required`` messages, with printf verbs shown as ``…``."""
    found = []
    for match in _FAIL.finditer(text):
        message = match["message"].replace('\\"', '"')
        found.append(re.sub(r"%[-+ #0]*[0-9]*[vdsqf]", "…", message))
    return found


def render(
    schema: Node | None = None,
    values_text: str | None = None,
    helpers_text: str | None = None,
) -> str:
    schema = json.loads(SCHEMA.read_text()) if schema is None else schema
    values_text = VALUES.read_text() if values_text is None else values_text
    helpers_text = HELPERS.read_text() if helpers_text is None else helpers_text
    try:
        values = yaml.safe_load(values_text) or {}
    except yaml.YAMLError as error:
        raise ReferenceError(f"{VALUES.name} is not valid YAML: {error}") from None
    rows = [
        [
            code(value.path),
            type_of(value.schema),
            _default(value),
            validation_of(value.schema),
            value.comment or str(value.schema.get("description", "")),
        ]
        for value in collect(schema, values, comments(values_text))
    ]
    lines = [
        "# Helm values reference (`charts/channelworks`)",
        "",
        "<!-- Generated by `python -m tools.docs.helm_values_reference` from",
        f"     {SCHEMA.relative_to(ROOT)}, {VALUES.relative_to(ROOT)} and",
        f"     {HELPERS.relative_to(ROOT)}. Do not edit: tests/docs/test_reference_is_current.py",
        "     fails when this page is stale. -->",
        "",
        "Every key the chart's schema knows, with its default from `values.yaml` and the comment "
        "written above it there. `helm install` and `helm upgrade` refuse any other key in the "
        'chart\'s own blocks ("no other keys") and any value outside the bounds below, naming it. '
        "Kubernetes types (`resources`, `affinity`, `tolerations`, security contexts) are passed "
        "to the operator's pods as they are and checked by the API server. What the chart makes "
        "from these values: [helm.md](../helm.md); installing: [install.md](../install.md).",
        "",
    ]
    lines += markdown.table(["Key", "Type", "Default", "Validation", "Meaning"], rows)
    checks = render_checks(helpers_text)
    if checks:
        lines += [
            "",
            "## Checks across values",
            "",
            "The templates refuse these combinations with the message shown (`…` is the value "
            "you gave):",
            "",
        ]
        lines += [f"- {markdown.cell(message)}" for message in checks]
    lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    return markdown.run(render, OUTPUT, argv)


if __name__ == "__main__":
    raise SystemExit(main())
