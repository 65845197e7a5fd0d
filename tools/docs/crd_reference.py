"""Generate docs/reference/realtimeapp.md: every field of the RealtimeApp CRD.

The CRD (charts/channelworks/crds/realtimeapps.channelworks.dev.yaml) gives each field's type,
default, bounds, enum, description and CEL rules; tools/docs/realtimeapp_notes.yaml says what
the operator does with it. Every field needs a note (a key may be a glob such as
``spec.*.resources``) and every note must name a field that exists, so neither side can drift.

    python -m tools.docs.crd_reference            # write the page
    python -m tools.docs.crd_reference --check    # exit 1 when the committed page is stale
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tools.docs import markdown
from tools.docs.markdown import ROOT, ReferenceError, code

CRD = ROOT / "charts" / "channelworks" / "crds" / "realtimeapps.channelworks.dev.yaml"
NOTES = Path(__file__).with_name("realtimeapp_notes.yaml")
OUTPUT = ROOT / "docs" / "reference" / "realtimeapp.md"
QUANTITY_PATTERN_START = r"^(\+|-)?(([0-9]+(\.[0-9]*)?)"
Node = Mapping[str, Any]


@dataclass(frozen=True)
class Rule:
    number: int
    on: str
    rule: str
    message: str
    field_path: str | None


@dataclass(frozen=True)
class Field:
    path: str
    node: Node
    required: bool
    rules: tuple[int, ...]


def load_crd(path: Path = CRD) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def load_notes(path: Path = NOTES) -> dict[str, str]:
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ReferenceError(f"{path.name} is not valid YAML: {error}") from None
    if not isinstance(loaded, dict) or not all(isinstance(v, str) for v in loaded.values()):
        raise ReferenceError(f"{path.name} must map field paths (or globs) to text")
    return {str(key): " ".join(value.split()) for key, value in loaded.items()}


def _version(crd: Mapping[str, Any]) -> Mapping[str, Any]:
    versions = crd["spec"]["versions"]
    storage = [v for v in versions if v.get("storage")]
    if len(storage) != 1:
        raise ReferenceError("the CRD must have exactly one storage version")
    version: Mapping[str, Any] = storage[0]
    return version


def _walk(
    node: Node, path: str, required: bool, rules: list[Rule]
) -> Iterator[tuple[str, Node, bool, tuple[int, ...]]]:
    """(path, schema node, required, numbers of the rules attached) for ``node`` and below.

    The item of an array is not a row of its own: its rules go to the array's row and its
    properties appear as ``array[].property``.
    """
    own: list[int] = []
    for where in (node, node.get("items") or {}):
        for validation in where.get("x-kubernetes-validations", []):
            number = len(rules) + 1
            rules.append(
                Rule(
                    number,
                    path,
                    " ".join(validation["rule"].split()),
                    " ".join(validation["message"].split()),
                    validation.get("fieldPath"),
                )
            )
            own.append(number)
    yield path, node, required, tuple(own)
    children = node.get("properties") or {}
    item = node.get("items")
    if isinstance(item, Mapping) and item.get("properties"):
        children, prefix, needed = item["properties"], f"{path}[]", item.get("required", [])
    else:
        prefix, needed = path, node.get("required", [])
    for name, child in children.items():
        yield from _walk(child, f"{prefix}.{name}", name in needed, rules)


def fields(crd: Mapping[str, Any]) -> tuple[list[Field], list[Rule]]:
    """Every field under spec and status, in schema order, and every CEL rule, numbered."""
    root = _version(crd)["schema"]["openAPIV3Schema"]
    rules: list[Rule] = []
    for validation in root.get("x-kubernetes-validations", []):
        rules.append(
            Rule(
                len(rules) + 1,
                "metadata.name",
                " ".join(validation["rule"].split()),
                " ".join(validation["message"].split()),
                None,
            )
        )
    walked = []
    for top in ("spec", "status"):
        node = root["properties"][top]
        walked += list(_walk(node, top, top in root.get("required", []), rules))
    # A rule that names a field (fieldPath) is also listed on that field's row.
    aimed: dict[str, list[int]] = {}
    for rule in rules:
        if rule.field_path:
            aimed.setdefault(rule.on + rule.field_path, []).append(rule.number)
    found = [
        Field(path, child, required, tuple(sorted({*own, *aimed.get(path, [])})))
        for path, child, required, own in walked
    ]
    return found, rules


def type_of(node: Node) -> str:
    if node.get("x-kubernetes-int-or-string"):
        return "quantity" if _is_quantity(node) else "int or string"
    kind = node.get("type", "")
    if kind == "array":
        item = node.get("items") or {}
        return "[]" + type_of(item)
    if kind == "object":
        extra = node.get("additionalProperties")
        if isinstance(extra, Mapping):
            value = "quantity" if _is_quantity(extra) else extra.get("type", "any")
            return f"map[string]{value}"
        if node.get("x-kubernetes-preserve-unknown-fields"):
            return "object (any fields)"
        return "object"
    if node.get("format") == "date-time":
        return "string (date-time)"
    return str(kind)


def _is_quantity(node: Node) -> bool:
    return str(node.get("pattern", "")).startswith(QUANTITY_PATTERN_START)


def validation_of(item: Field) -> str:
    node = item.node
    parts: list[str] = []
    if item.required:
        parts.append("**required**")
    if "enum" in node:
        parts.append("one of " + ", ".join(code(value) for value in node["enum"]))
    low, high = node.get("minimum"), node.get("maximum")
    if low is not None and high is not None:
        parts.append(f"{low} to {high}")
    elif low is not None:
        parts.append(f"at least {low}")
    elif high is not None:
        parts.append(f"at most {high}")
    low_len, high_len = node.get("minLength"), node.get("maxLength")
    if low_len is not None and high_len is not None:
        parts.append(f"{low_len} to {high_len} characters")
    elif high_len is not None:
        parts.append(f"at most {high_len} characters")
    elif low_len is not None:
        parts.append(f"at least {low_len} characters")
    if "maxItems" in node:
        parts.append(f"at most {node['maxItems']} items")
    if "pattern" in node and not _is_quantity(node):
        parts.append(f"matches {code(node['pattern'])}")
    if _is_quantity(node) or _is_quantity(node.get("additionalProperties") or {}):
        parts.append("a Kubernetes quantity")
    item_node = node.get("items") or {}
    needed = node.get("required", []) if node.get("type") == "object" else []
    needed = needed or item_node.get("required", [])
    if needed and node.get("properties") is None and item_node.get("properties") is None:
        parts.append("needs " + ", ".join(code(name) for name in needed))
    parts += [f"rule {number}" for number in item.rules]
    return "; ".join(parts)


def note_for(path: str, notes: Mapping[str, str]) -> str:
    if path in notes:
        return notes[path]
    matches = [key for key in notes if fnmatch.fnmatchcase(path, key)]
    if not matches:
        raise ReferenceError(
            f"{path} has no note in {NOTES.relative_to(ROOT)}: add what the operator does with it"
        )
    # The most specific glob wins (the longest pattern).
    return notes[max(matches, key=len)]


def check_notes(paths: Sequence[str], notes: Mapping[str, str]) -> None:
    for key in notes:
        if key not in paths and not any(fnmatch.fnmatchcase(path, key) for path in paths):
            raise ReferenceError(
                f"{NOTES.relative_to(ROOT)} has a note for {key}, which is no field of the CRD"
            )


def _meaning(item: Field, notes: Mapping[str, str]) -> str:
    description = " ".join(str(item.node.get("description", "")).split())
    note = note_for(item.path, notes)
    if description and not description.endswith("."):
        description += "."
    return f"{description} {note}".strip()


def _section_of(path: str, grouped: set[str]) -> str:
    """``status``, one section per object directly under spec, and ``spec`` for the rest."""
    if path.startswith("status"):
        return "status"
    top = ".".join(path.split(".")[:2]).replace("[]", "")
    return top if top in grouped else "spec"


def _field_rows(items: Sequence[Field], notes: Mapping[str, str]) -> list[list[str]]:
    rows = []
    for item in items:
        default = code(item.node["default"]) if "default" in item.node else ""
        rows.append(
            [
                code(item.path),
                type_of(item.node),
                default,
                validation_of(item),
                _meaning(item, notes),
            ]
        )
    return rows


def _header(crd: Mapping[str, Any]) -> list[str]:
    spec = crd["spec"]
    version = _version(crd)
    names = spec["names"]
    scale = version.get("subresources", {}).get("scale", {})
    lines = [
        "# RealtimeApp reference",
        "",
        "<!-- Generated by `python -m tools.docs.crd_reference` from",
        f"     {CRD.relative_to(ROOT)} and {NOTES.relative_to(ROOT)}.",
        "     Do not edit: tests/docs/test_reference_is_current.py fails when this page is stale."
        " -->",
        "",
        f"`apiVersion: {spec['group']}/{version['name']}`, `kind: {names['kind']}`, "
        f"{spec['scope'].lower()}; plural `{names['plural']}`, short name "
        + ", ".join(f"`{short}`" for short in names.get("shortNames", []))
        + ", categories "
        + ", ".join(f"`{category}`" for category in names.get("categories", []))
        + ". The CRD file is the source of truth: the Helm chart installs it from `crds/` and "
        "the operator's tests apply the same file. How to install it: [install.md](../install.md); "
        "a worked example: [first-app.md](../first-app.md); what the operator makes from it: "
        "[operator.md](../operator.md).",
        "",
        "The API server fills in every default below when the app is stored and refuses a value "
        "outside its bounds or a broken rule with the rule's message. The operator parses the "
        "stored spec again (`operator/src/channelworks_operator/spec.py`, same defaults and "
        "rules) and reports what it cannot honour as the `InvalidSpec` condition "
        "(phase `Failed`).",
        "",
    ]
    if scale:
        lines += [
            "**Scale subresource.** `kubectl scale rtapp <name> --replicas=N` sets "
            f"`{scale['specReplicasPath'].lstrip('.')}`; the current count is "
            f"`{scale['statusReplicasPath'].lstrip('.')}` and the pods' selector "
            f"`{scale['labelSelectorPath'].lstrip('.')}`.",
            "",
        ]
    columns = version.get("additionalPrinterColumns", [])
    if columns:
        lines += ["**`kubectl get rtapp` columns** (priority 1 only with `-o wide`):", ""]
        lines += markdown.table(
            ["Column", "Type", "From", "Priority"],
            [
                [c["name"], c["type"], code(c["jsonPath"]), str(c.get("priority", 0))]
                for c in columns
            ],
        )
        lines.append("")
    return lines


def render(crd: Mapping[str, Any] | None = None, notes: Mapping[str, str] | None = None) -> str:
    crd = load_crd() if crd is None else crd
    notes = load_notes() if notes is None else notes
    found, rules = fields(crd)
    check_notes([item.path for item in found], notes)
    lines = _header(crd)
    grouped = {
        item.path
        for item in found
        if item.path.startswith("spec.") and item.path.count(".") == 1 and "properties" in item.node
    }
    sections: dict[str, list[Field]] = {}
    for item in found:
        sections.setdefault(_section_of(item.path, grouped), []).append(item)
    header = ["Field", "Type", "Default", "Validation", "Meaning and what the operator does"]
    for section, items in sections.items():
        lines += [f"## `{section}`", ""]
        lines += markdown.table(header, _field_rows(items, notes))
        lines.append("")
    lines += [
        "## Validation rules (CEL)",
        "",
        "Checked by the API server on create and update (`oldSelf` rules only on update). "
        "The message is what `kubectl apply` prints.",
        "",
    ]
    lines += markdown.table(
        ["#", "On", "Rule", "Message"],
        [
            [
                str(rule.number),
                code(rule.on + (rule.field_path or "")),
                code(rule.rule),
                rule.message,
            ]
            for rule in rules
        ],
    )
    lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    return markdown.run(render, OUTPUT, argv)


if __name__ == "__main__":
    raise SystemExit(main())
