"""The example alert rules (deploy/prometheus/alerts.yml, #23) name only metrics the platform exports."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"
# A metric name in PromQL: fcx_… (the platform's); functions, keywords and labels are not checked here.
_METRIC = re.compile(r"(?<![A-Za-z0-9_\"])(fcx_[A-Za-z0-9_]+)")
SEVERITIES = {"critical", "warning", "info"}
_DURATION = re.compile(r"\d+[smhd]")


def _rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_every_rule_is_complete_and_bilingual() -> None:
    rules = _rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert _DURATION.fullmatch(rule["for"]), rule
        assert rule["labels"]["severity"] in SEVERITIES, rule
        summary, summary_en = rule["annotations"]["summary"], rule["annotations"]["summary_en"]
        assert re.search(r"[\u4e00-\u9fff]", summary), rule["alert"]  # Chinese first
        assert summary_en.isascii(), rule["alert"]
        assert _METRIC.search(rule["expr"]), rule["alert"]
    # what the issue asks alerts for
    wanted = {
        "fcx_outbox_dead", "fcx_outbox_oldest_pending_age_seconds", "fcx_instructions_overdue",
        "fcx_cases_overdue", "fcx_decision_index_degraded", "fcx_http_requests_total",
        "fcx_http_request_seconds_bucket", "fcx_node_feed_lag_max", "fcx_nodes_silent",
    }  # fmt: skip
    assert wanted <= {m for r in rules for m in _METRIC.findall(r["expr"])}


def test_every_metric_in_the_rules_is_on_the_platforms_metrics(client: TestClient) -> None:
    # one decision request, refused without a key: the latency histogram has samples for its route
    assert client.post("/v1/decisions", json={}).status_code == 401
    scraped = client.get("/metrics")
    assert scraped.status_code == 200
    exported: set[str] = set()
    labels: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(scraped.text):
        for sample in family.samples:
            exported.add(sample.name)
            labels.setdefault(sample.name, set()).update(sample.labels)
    for rule in _rules():
        for name in _METRIC.findall(rule["expr"]):
            assert name in exported, f"{rule['alert']}: {name} is not exported ({sorted(exported)})"
    assert {"case"} <= labels["fcx_cases_overdue"]
    assert {"route", "le"} <= labels["fcx_http_request_seconds_bucket"]
    assert any(
        s.labels.get("route") == "/v1/decisions"
        for f in text_string_to_metric_families(scraped.text)
        for s in f.samples
        if s.name == "fcx_http_request_seconds_bucket"
    )
