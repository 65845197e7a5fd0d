"""Just enough PromQL reading for the chart's tests: which metrics an expression selects, with
which label matchers, and whether its brackets and strings are balanced.

It is not a PromQL parser (promtool is, when it is built): it walks the tokens, skips strings,
numbers, durations, ``[ranges]`` and the label lists of ``by``/``without``/``on``/``ignoring``/
``group_left``/``group_right``, and takes every other identifier that is not a function call as
a metric name. Grafana variables (``$app``, ``$__rate_interval``) only appear inside strings and
ranges, where they are skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LABEL_LIST_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
_OPERATOR_KEYWORDS = {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"}
# Aggregations may be followed by ``by (...)`` before their parenthesis: never metric names.
_AGGREGATIONS = {
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
}
_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?(?:[a-z]+)?", re.IGNORECASE)
_MATCHER = re.compile(
    r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\')\s*,?'
)
_PAIRS = {"(": ")", "[": "]", "{": "}"}


class PromQLError(ValueError):
    """The expression is not even PromQL-shaped (unbalanced, unterminated, bad matchers)."""


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str
    value: str


@dataclass(frozen=True)
class Selector:
    metric: str
    matchers: tuple[Matcher, ...]


def check_balanced(expr: str) -> None:
    """Raise PromQLError unless every bracket is closed in order and every string ends."""
    stack: list[tuple[str, int]] = []
    position = 0
    while position < len(expr):
        char = expr[position]
        if char in "\"'`":
            match = _STRING.match(expr, position)
            if match is None:
                raise PromQLError(f"unterminated string at {position}: {expr[position:][:40]!r}")
            position = match.end()
            continue
        if char in _PAIRS:
            stack.append((char, position))
        elif char in _PAIRS.values():
            if not stack or _PAIRS[stack[-1][0]] != char:
                raise PromQLError(f"unexpected {char!r} at {position} in {expr!r}")
            stack.pop()
        position += 1
    if stack:
        opener, where = stack[-1]
        raise PromQLError(f"{opener!r} at {where} is never closed in {expr!r}")
    if not expr.strip():
        raise PromQLError("empty expression")


def _skip_space(expr: str, position: int) -> int:
    while position < len(expr) and expr[position].isspace():
        position += 1
    return position


def _closing(expr: str, position: int) -> int:
    """Index just after the bracket that closes the one at ``position`` (strings skipped)."""
    depth = 0
    while position < len(expr):
        char = expr[position]
        if char in "\"'`":
            match = _STRING.match(expr, position)
            if match is None:
                raise PromQLError(f"unterminated string at {position}")
            position = match.end()
            continue
        if char in _PAIRS:
            depth += 1
        elif char in _PAIRS.values():
            depth -= 1
            if depth == 0:
                return position + 1
        position += 1
    raise PromQLError(f"bracket at {position} is never closed")


def _matchers(body: str) -> tuple[Matcher, ...]:
    found: list[Matcher] = []
    position = 0
    while position < len(body):
        if body[position:].strip() == "":
            break
        match = _MATCHER.match(body, position)
        if match is None:
            raise PromQLError(f"cannot read the label matchers {{{body}}}")
        found.append(Matcher(match[1], match[2], match[3][1:-1]))
        position = match.end()
    return tuple(found)


def selectors(expr: str) -> list[Selector]:
    """Every metric the expression selects, in order."""
    check_balanced(expr)
    found: list[Selector] = []
    position = 0
    while position < len(expr):
        char = expr[position]
        if char in "\"'`":
            match = _STRING.match(expr, position)
            if match is None:
                raise PromQLError(f"unterminated string at {position}")
            position = match.end()
        elif char in "[{":  # a range, or a selector without a metric name: {__name__=...}
            position = _closing(expr, position)
        elif char.isdigit() or (char == "." and expr[position + 1 : position + 2].isdigit()):
            match = _NUMBER.match(expr, position)
            position = match.end() if match else position + 1
        elif char == "$":  # a Grafana variable outside a string
            match = _IDENTIFIER.match(expr, position + 1)
            position = match.end() if match else position + 1
        elif (match := _IDENTIFIER.match(expr, position)) is not None:
            word = match[0]
            after = _skip_space(expr, match.end())
            following = expr[after : after + 1]
            if word.lower() in _LABEL_LIST_KEYWORDS:
                position = _closing(expr, after) if following == "(" else after
            elif word.lower() in _OPERATOR_KEYWORDS | _AGGREGATIONS or following == "(":
                position = match.end()  # an operator, or a function / aggregation name
            else:
                matchers: tuple[Matcher, ...] = ()
                position = match.end()
                if following == "{":
                    end = _closing(expr, after)
                    matchers = _matchers(expr[after + 1 : end - 1])
                    position = end
                found.append(Selector(word, matchers))
        else:
            position += 1
    return found


def metric_names(expr: str) -> set[str]:
    return {selector.metric for selector in selectors(expr)}
