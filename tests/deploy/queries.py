"""The PromQL the deployment ships (Grafana dashboard, Prometheus alerts), and a check that
each query names only metrics and labels a gateway really exports.

``check`` parses a query (promql-parser: Prometheus' own grammar) and walks it: every metric
must be a series in the exposition, every label matcher and ``by``/``on`` label one that the
series beneath it carry, and the labels a panel's legend or an alert's annotation uses must be
in the query's result.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser as pp
import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent.parent
DASHBOARD = ROOT / "config" / "grafana" / "dashboards" / "ai-gateway.json"
ALERTS = ROOT / "config" / "prometheus" / "alerts.yml"
# what Prometheus adds to every scraped series, and the series it makes itself
TARGET_LABELS = frozenset({"job", "instance"})
PROMETHEUS_SERIES = {"up": TARGET_LABELS}
# Grafana's variables, as Grafana would expand them (the model picker on "All")
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$model": ".*"}
_LEGEND = re.compile(r"\{\{\s*(\w+)\s*\}\}")
_ANNOTATION = re.compile(r"\$labels\.(\w+)")


class QueryError(AssertionError):
    pass


def exported(metrics_text: str) -> dict[str, frozenset[str]]:
    """Series name -> its label names, from a /metrics exposition."""
    series: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    return {name: frozenset(labels) for name, labels in series.items()}


def expand(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def dashboard_queries() -> Iterator[tuple[str, str, frozenset[str]]]:
    """(panel title, query, labels its legend uses) for every target of the dashboard."""
    board = json.loads(DASHBOARD.read_text())
    for panel in board["panels"]:
        for target in panel["targets"]:
            legend = frozenset(_LEGEND.findall(target.get("legendFormat", "")))
            yield panel["title"], expand(target["expr"]), legend


def alert_queries() -> Iterator[tuple[str, str, frozenset[str]]]:
    """(alert name, expression, labels its annotations use) for every alerting rule."""
    rules: dict[str, Any] = yaml.safe_load(ALERTS.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            used = frozenset(_ANNOTATION.findall(json.dumps(rule.get("annotations", {}))))
            yield rule["alert"], rule["expr"], used


def check(expr: str, series: dict[str, frozenset[str]], result_labels: frozenset[str] = frozenset()
          ) -> set[str]:
    """The metric names ``expr`` reads; QueryError when it names a metric or label that
    ``series`` does not have, or its result lacks one of ``result_labels``."""
    names: set[str] = set()
    known = {**{k: v | TARGET_LABELS for k, v in series.items()}, **PROMETHEUS_SERIES}
    labels = _labels(pp.parse(expr), known, names)
    missing = result_labels - labels
    if missing:
        raise QueryError(f"{expr}: the result has no label {sorted(missing)}")
    return names


def _labels(node: Any, known: dict[str, frozenset[str]], names: set[str]) -> frozenset[str]:
    """The label names of ``node``'s result, checking the selectors and groupings in it."""
    if isinstance(node, pp.MatrixSelector):
        return _labels(node.vector_selector, known, names)
    if isinstance(node, pp.VectorSelector):
        if node.name not in known:
            raise QueryError(f"no series {node.name!r} is exported")
        names.add(node.name)
        have = known[node.name]
        for matcher in node.matchers.matchers:
            if matcher.name not in have:
                raise QueryError(f"{node.name} has no label {matcher.name!r}")
        return have
    if isinstance(node, pp.Call):
        inner = frozenset().union(*(_labels(a, known, names) for a in node.args))
        return inner - {"le"} if node.func.name == "histogram_quantile" else inner
    if isinstance(node, pp.AggregateExpr):
        inner = _labels(node.expr, known, names)
        if node.param is not None:
            _labels(node.param, known, names)
        grouping = frozenset(node.modifier.labels) if node.modifier else frozenset()
        if not grouping <= inner:
            raise QueryError(f"grouping by {sorted(grouping - inner)}, which are not labels")
        if node.modifier and node.modifier.type == pp.AggModifierType.Without:
            return inner - grouping
        return grouping
    if isinstance(node, pp.BinaryExpr):
        return _labels(node.lhs, known, names) | _labels(node.rhs, known, names)
    if isinstance(node, pp.ParenExpr | pp.UnaryExpr | pp.SubqueryExpr):
        return _labels(node.expr, known, names)
    return frozenset()  # a number or string literal
