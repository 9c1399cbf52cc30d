"""dashboards/alerts.yml and dashboards/kasmm.json only use metrics and labels kasmm exports.

The exported names come from a real scrape of a supervisor running two sim profiles (with the
optional wiring attached, an error recorded and one profile halted, so every label shows up).
When ``promtool`` is installed (Debian package ``prometheus``), the rules and every dashboard
query are also checked by Prometheus' own parser, and the alerts are unit-tested on series.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Any

import anyio
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from ruamel.yaml import YAML

from kasmm.core.risk import RiskState, Trip
from kasmm.errors import TransientVenueError
from kasmm.limiter import TokenBucket
from kasmm.obs.metrics import LoopLagMonitor, build_registry
from kasmm.supervisor import Supervisor
from kasmm.venues.metered import VenueMetrics

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "dashboards" / "alerts.yml"
DASHBOARD = ROOT / "dashboards" / "kasmm.json"

#: PromQL functions, aggregations and keywords the files may use.
PROMQL_WORDS = {
    "abs",
    "absent",
    "and",
    "avg",
    "avg_over_time",
    "bool",
    "by",
    "changes",
    "clamp_min",
    "count",
    "count_over_time",
    "delta",
    "histogram_quantile",
    "increase",
    "irate",
    "max",
    "max_over_time",
    "min",
    "min_over_time",
    "offset",
    "on",
    "or",
    "rate",
    "resets",
    "sum",
    "time",
    "topk",
    "unless",
    "without",
}
#: Labels Prometheus adds (or the histogram format has) besides those kasmm exports.
SERVER_LABELS = {"instance", "job", "le", "__name__"}


@dataclass(frozen=True)
class Exported:
    metrics: frozenset[str]
    labels: frozenset[str]


# --- the scrape ------------------------------------------------------------------------------


def _profile_yaml(name: str) -> str:
    text = textwrap.dedent(
        f"""\
        name: {name}
        venue:
          type: sim
          market: {{book_interval_s: 0.05}}
        symbol: KAS/USDT
        modes:
          aggressive: {{spread_bps: 20, size: 1000, levels: 2}}
          passive: {{spread_bps: 20, size: 1000, levels: 2}}
        refresh: {{fallback_interval_s: 0.2}}
        """
    )
    if name == "p2":  # the obligation series exist only for a profile with obligations
        text += "obligations: {max_spread_bps: 50, window_s: 60}\n"
    return text


async def _scrape(directory: Path) -> str:
    for name in ("p1", "p2"):
        (directory / f"{name}.yaml").write_text(_profile_yaml(name))
    sup = Supervisor(directory)
    monitor = LoopLagMonitor(interval_s=0.02)
    registry = build_registry(sup, loop_lag=monitor)
    async with anyio.create_task_group() as tg:
        tg.start_soon(monitor.run)
        await tg.start(sup.run)
        # The optional wiring (see kasmm.obs.metrics), attached by hand.
        sup.reload_results = {"ok": 1, "invalid": 0}
        for slot in sup.slots.values():
            metrics = VenueMetrics()
            metrics.observe_request("place_order", 0.01)
            metrics.record_error("place_order", TransientVenueError("down"))
            metrics.observe_wait(0.0)
            slot.venue_metrics = metrics
            slot.limiter = TokenBucket(10, 5, sup.clock)
        bot = sup.slots["p1"].bot
        assert bot is not None
        bot.risk = RiskState(halt=Trip("max_drawdown", "halt", 2.0, 1.0, bot.clock.now()))
        await anyio.sleep(0.1)
        text = generate_latest(registry).decode()
        tg.cancel_scope.cancel()
    return text


@functools.cache
def exported() -> Exported:
    """Sample names (``_total``, ``_bucket``, ... included) and label names of one scrape."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        text = anyio.run(_scrape, Path(tmp))
    metrics: set[str] = set()
    labels: set[str] = set()
    for family in text_string_to_metric_families(text):
        kind = family.type
        if kind == "counter":
            metrics.add(f"{family.name}_total")
        elif kind == "histogram":
            metrics.update(f"{family.name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        else:
            metrics.add(family.name)
        for sample in family.samples:
            metrics.add(sample.name)
            labels.update(sample.labels)
    return Exported(frozenset(metrics), frozenset(labels))


# --- PromQL scanning -------------------------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{([^}]*)\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_DURATION = re.compile(r"\b\d+(?:ms|s|m|h|d|w|y)\b")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LEGEND = re.compile(r"\{\{\s*\$?(?:labels\.)?([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")
_ANNOTATION_LABEL = re.compile(r"\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)")


def scan(expr: str) -> tuple[set[str], set[str]]:
    """``(metric names, label names)`` an expression refers to."""
    labels: set[str] = set()
    text = _STRING.sub('""', expr)
    for body in _MATCHERS.findall(text):
        labels.update(m.group(1) for m in re.finditer(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", body))
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    for body in _GROUPING.findall(text):
        labels.update(n.strip() for n in body.split(",") if n.strip())
    text = _GROUPING.sub(" ", text)
    text = _DURATION.sub(" ", text)
    text = _NUMBER.sub(" ", text)
    names = {ident for ident in _IDENT.findall(text) if ident not in PROMQL_WORDS}
    return names, labels


def test_scan_finds_metrics_and_labels() -> None:
    names, labels = scan(
        'histogram_quantile(0.99, sum by (le, profile) (rate(kasmm_x_bucket{a="1", b=~"x|y"}'
        "[$__rate_interval]))) * 1e4 > 2 and on (c) kasmm_y offset 30m"
    )
    assert names == {"kasmm_x_bucket", "kasmm_y"}
    assert labels == {"le", "profile", "a", "b", "c"}


def check_expr(expr: str, where: str) -> None:
    names, labels = scan(expr)
    known = exported()
    assert names, f"{where}: no metric in {expr!r}"
    assert names <= known.metrics, f"{where}: unknown metrics {sorted(names - known.metrics)}"
    unknown = labels - known.labels - SERVER_LABELS
    assert not unknown, f"{where}: unknown labels {sorted(unknown)}"


# --- alerts.yml ------------------------------------------------------------------------------


def alert_rules() -> list[dict[str, Any]]:
    doc = YAML(typ="safe").load(ALERTS.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_alert_rules_use_exported_metrics_and_labels() -> None:
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for needed in (
        "KasmmProfileHalted",
        "KasmmProfileFailed",
        "KasmmStaleBook",
        "KasmmNoFills",
        "KasmmVenueErrorBurst",
        "KasmmInventoryOffTarget",
        "KasmmConfigErrors",
    ):
        assert needed in names
    known = exported()
    for rule in rules:
        assert re.fullmatch(r"Kasmm[A-Z][A-Za-z]+", rule["alert"])
        check_expr(rule["expr"], rule["alert"])
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        for text in rule["annotations"].values():
            used = set(_ANNOTATION_LABEL.findall(text))
            assert used <= known.labels | SERVER_LABELS, (rule["alert"], used)
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"])


# --- kasmm.json ------------------------------------------------------------------------------


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))


def test_dashboard_is_importable_and_queries_exported_metrics() -> None:
    dash = json.loads(DASHBOARD.read_text())
    assert dash["schemaVersion"] >= 36
    assert dash["uid"] and dash["title"]
    inputs = {i["name"]: i for i in dash["__inputs"]}
    assert inputs["DS_PROMETHEUS"]["type"] == "datasource"
    assert inputs["DS_PROMETHEUS"]["pluginId"] == "prometheus"

    variables = {v["name"]: v for v in dash["templating"]["list"]}
    profile = variables["profile"]
    assert profile["multi"] is True and profile["includeAll"] is True
    assert profile["definition"] == "label_values(kasmm_mid_price, profile)"
    assert profile["datasource"]["uid"] == "${DS_PROMETHEUS}"
    check_expr(profile["definition"].replace("label_values(", "(").replace(", profile", ""), "var")

    known = exported()
    ids: set[int] = set()
    titles: set[str] = set()
    queried: set[str] = set()
    boxes = [p["gridPos"] for p in dash["panels"]]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            apart = (
                a["x"] + a["w"] <= b["x"]
                or b["x"] + b["w"] <= a["x"]
                or a["y"] + a["h"] <= b["y"]
                or b["y"] + b["h"] <= a["y"]
            )
            assert apart, f"panels overlap: {a} {b}"
    for panel in panels(dash["panels"]):
        assert panel["id"] not in ids
        ids.add(panel["id"])
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24 and pos["h"] > 0
        if panel["type"] == "row":
            continue
        assert panel["title"] not in titles
        titles.add(panel["title"])
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}"
            check_expr(target["expr"], panel["title"])
            queried |= scan(target["expr"])[0]
            used = set(_LEGEND.findall(target.get("legendFormat", "")))
            assert used <= known.labels | SERVER_LABELS, (panel["title"], used)
    for annotation in dash["annotations"]["list"]:
        if "expr" in annotation:
            check_expr(annotation["expr"], annotation["name"])
    # The panels the brief asks for are there.
    for needed in (
        "kasmm_mid_price",
        "kasmm_own_best_price",
        "kasmm_quote_spread_ratio",
        "kasmm_inventory_share_ratio",
        "kasmm_inventory_target_share_ratio",
        "kasmm_net_pnl_quote",
        "kasmm_pnl_quote",
        "kasmm_quote_uptime_ratio",
        "kasmm_own_spread_bps",
        "kasmm_own_spread_now_bps",
        "kasmm_own_depth_quote",
        "kasmm_fill_ratio",
        "kasmm_order_to_trade_ratio",
        "kasmm_markout_bps",
        "kasmm_obligation_compliance_ratio",
        "kasmm_obligation_breached",
        "kasmm_drawdown_quote",
        "kasmm_fills_total",
        "kasmm_orders_rejected_total",
        "kasmm_venue_request_duration_seconds_bucket",
        "kasmm_venue_errors_total",
        "kasmm_rate_limit_tokens",
        "kasmm_profile_state",
        "kasmm_event_loop_lag_seconds_bucket",
    ):
        assert needed in queried, needed


# --- promtool (optional) ---------------------------------------------------------------------

PROMTOOL = shutil.which("promtool")
# CI installs promtool (.ci/run), so there the check can never be skipped silently.
if PROMTOOL is None and os.environ.get("CI"):
    raise RuntimeError("promtool is required in CI (.ci/run installs Debian's prometheus)")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed")


def promtool(*args: str) -> None:
    assert PROMTOOL is not None
    done = subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def dump_yaml(data: Any) -> str:
    out = StringIO()
    yaml = YAML(typ="safe")
    yaml.default_flow_style = False
    yaml.dump(data, out)
    return out.getvalue()


@needs_promtool
def test_promtool_accepts_rules_and_dashboard_queries(tmp_path: Path) -> None:
    promtool("check", "rules", str(ALERTS))
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in panels(dash["panels"]) for t in p.get("targets", [])]
    exprs += [a["expr"] for a in dash["annotations"]["list"] if "expr" in a]
    substituted = [
        e.replace("$__rate_interval", "5m").replace("$__range", "1h").replace("$profile", ".*")
        for e in exprs
    ]
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}:value", "expr": e}
                    for i, e in enumerate(substituted)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(dump_yaml(rules))
    promtool("check", "rules", str(path))


P1 = 'profile="p1",venue="sim",symbol="KAS/USDT"'
P2 = 'profile="p2",venue="sim",symbol="KAS/USDT"'
P3 = 'profile="p3",venue="sim",symbol="KAS/USDT"'


def expect(alert: str, at: str, *labels: dict[str, str]) -> dict[str, Any]:
    severity = next(r["labels"]["severity"] for r in alert_rules() if r["alert"] == alert)
    return {
        "eval_time": at,
        "alertname": alert,
        "exp_alerts": [
            {"exp_labels": {**extra, "severity": severity, "service": "kasmm"}} for extra in labels
        ],
    }


def who(profile: str, **more: str) -> dict[str, str]:
    return {"profile": profile, "venue": "sim", "symbol": "KAS/USDT", **more}


@needs_promtool
def test_alerts_fire_on_the_right_series(tmp_path: Path) -> None:
    # promtool compares annotations exactly: test the expressions on a copy without them.
    doc = YAML(typ="safe").load(ALERTS.read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    rules_path = tmp_path / "alerts.yml"
    rules_path.write_text(dump_yaml(doc))
    series = [
        # p1 halted by max_drawdown; p2 only reduce-only.
        (f'kasmm_kill_switch_engaged{{{P1},rule="max_drawdown",action="halt"}}', "1x20"),
        (f'kasmm_kill_switch_engaged{{{P2},rule="stale_book",action="reduce_only"}}', "1x20"),
        # p1 failed; p2 quoting.
        (f'kasmm_profile_state{{{P1},state="failed"}}', "1x20"),
        (f'kasmm_profile_state{{{P2},state="quoting"}}', "1x20"),
        (f'kasmm_profile_state{{{P2},state="failed"}}', "0x20"),
        # Books: p2 (quoting) goes stale; p1 (failed) is stale but that is the other alert.
        (f"kasmm_book_age_seconds{{{P1}}}", "0+60x20"),
        (f"kasmm_book_age_seconds{{{P2}}}", "0+60x20"),
        # Inventory: p1 0.4 off target, p2 0.2 off.
        (f"kasmm_inventory_share_ratio{{{P1}}}", "0.9x20"),
        (f"kasmm_inventory_target_share_ratio{{{P1}}}", "0.5x20"),
        (f"kasmm_inventory_share_ratio{{{P2}}}", "0.7x20"),
        (f"kasmm_inventory_target_share_ratio{{{P2}}}", "0.5x20"),
        # Venue errors: p1 5 transient errors a minute; p2 only routine ones.
        (
            f'kasmm_venue_errors_total{{{P1},endpoint="place_order",error="RequestTimedOut"}}',
            "0+5x20",
        ),
        (
            f'kasmm_venue_errors_total{{{P2},endpoint="cancel_order",error="OrderNotFound"}}',
            "0+50x20",
        ),
        # Rate limit: p1 nearly empty, p2 fine.
        (f"kasmm_rate_limit_tokens{{{P1}}}", "0.5x20"),
        (f"kasmm_rate_limit_capacity{{{P1}}}", "10x20"),
        (f"kasmm_rate_limit_tokens{{{P2}}}", "8x20"),
        (f"kasmm_rate_limit_capacity{{{P2}}}", "10x20"),
        # Restarts: p1 one a minute.
        (f"kasmm_profile_restarts_total{{{P1}}}", "0+1x20"),
        (f"kasmm_profile_restarts_total{{{P2}}}", "0x20"),
        ('kasmm_config_errors{instance="a",job="kasmm"}', "0 0 1x20"),
        # Event loop: every wake-up ~0.3-0.5 s late.
        ('kasmm_event_loop_lag_seconds_bucket{instance="a",job="kasmm",le="0.25"}', "0x20"),
        ('kasmm_event_loop_lag_seconds_bucket{instance="a",job="kasmm",le="0.5"}', "0+120x20"),
        ('kasmm_event_loop_lag_seconds_bucket{instance="a",job="kasmm",le="+Inf"}', "0+120x20"),
        # Obligations: p1 breached from minute 3 on; p2 below its requirement from minute 2.
        (f"kasmm_obligation_breached{{{P1}}}", "0 0 0 1x20"),
        (f"kasmm_obligation_breached{{{P2}}}", "0x20"),
        (f"kasmm_obligation_compliance_ratio{{{P1}}}", "0.99x20"),
        (f"kasmm_obligation_required_ratio{{{P1}}}", "0.95x20"),
        (f"kasmm_obligation_compliance_ratio{{{P2}}}", "0.99 0.99 0.9x20"),
        (f"kasmm_obligation_required_ratio{{{P2}}}", "0.95x20"),
    ]
    fills = [
        # p1 quoting an hour with no fill; p2 filling; p3 started 10 minutes before the check.
        (f'kasmm_profile_state{{{P1},state="quoting"}}', "1x60"),
        (f'kasmm_fills_total{{{P1},side="buy"}}', "5x60"),
        (f'kasmm_profile_state{{{P2},state="quoting"}}', "1x60"),
        (f'kasmm_fills_total{{{P2},side="buy"}}', "0+1x60"),
        (f'kasmm_profile_state{{{P3},state="quoting"}}', "_x35 1x25"),
        (f'kasmm_fills_total{{{P3},side="buy"}}', "_x35 0x25"),
    ]
    tests = {
        "rule_files": [str(rules_path)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in series],
                "alert_rule_test": [
                    expect("KasmmProfileHalted", "5m", who("p1", rule="max_drawdown")),
                    expect("KasmmProfileFailed", "5m", who("p1")),
                    expect("KasmmStaleBook", "5m", who("p2")),
                    expect("KasmmStaleBook", "1m"),
                    expect("KasmmInventoryOffTarget", "15m", who("p1")),
                    expect("KasmmInventoryOffTarget", "5m"),
                    expect("KasmmVenueErrorBurst", "10m", who("p1")),
                    expect("KasmmRateLimitExhausted", "10m", who("p1")),
                    expect("KasmmProfileRestartLoop", "10m", who("p1")),
                    expect("KasmmConfigErrors", "5m", {"instance": "a", "job": "kasmm"}),
                    expect("KasmmConfigErrors", "2m"),
                    expect("KasmmEventLoopLag", "15m", {"instance": "a", "job": "kasmm"}),
                    expect("KasmmObligationBreached", "3m"),
                    expect("KasmmObligationBreached", "5m", who("p1")),
                    expect("KasmmObligationComplianceLow", "16m"),
                    expect("KasmmObligationComplianceLow", "18m", who("p2")),
                ],
            },
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in fills],
                "alert_rule_test": [
                    expect("KasmmNoFills", "20m"),
                    expect("KasmmNoFills", "45m", who("p1")),
                ],
            },
        ],
    }
    path = tmp_path / "alerts_test.yml"
    path.write_text(dump_yaml(tests))
    promtool("test", "rules", str(path))
