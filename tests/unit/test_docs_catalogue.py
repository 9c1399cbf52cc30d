"""README's "Observability" section stays true to the code: metrics, alert rules, log events.

Three catalogues in the README are checked against what the code declares, both ways, so a new
metric, alert or log event without documentation fails, and so does a row for one that is gone:

* **metrics**: every family :class:`kasmm.obs.families.Families` creates (built here on a
  recording backend, so its labels are exact) and every other family constructor called with a
  literal ``kasmm_`` name anywhere in ``kasmm/`` (the parent's ``kasmm_shard_*`` families of
  ``--processes``), with its type and labels. Names are the exported ones: a counter's sample
  ends in ``_total`` whatever the family was declared as.
* **alert rules**: every ``alert:`` of ``dashboards/alerts.yml``, with its severity.
* **log events**: the event (first argument) of every ``log.debug/info/warning/error/critical/
  exception(...)`` call on a logger (a receiver whose name contains ``log``), of the engine's
  ``self._log(level, "event", ...)`` and its ``Log(level, event, fields)`` commands, and of
  :class:`kasmm.obs.throttle.ThrottledWarnings` (``event`` and ``event_suppressed``); both
  branches of a conditional (``"obligation_breached" if x else "obligation_met"``). The levels
  in the README are the union over every call site. An event name the walk cannot read (an
  f-string, a variable) fails the test, except in the few functions that only forward events
  named elsewhere (:data:`FORWARDERS`).

Pure reading of files and one in-memory object: no network, no supervisor, well under a second.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from kasmm.obs.families import PROFILE_LABELS, Families

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PACKAGE = ROOT / "kasmm"
ALERTS = ROOT / "dashboards" / "alerts.yml"

#: Log methods and the level each writes at (structlog's ``exception`` logs at error).
LOG_METHODS = {
    "debug": "debug",
    "info": "info",
    "warning": "warning",
    "error": "error",
    "critical": "critical",
    "exception": "error",
}
LEVELS = ("debug", "info", "warning", "error", "critical")
#: Functions that log an event named by their caller: ``(path under kasmm/, function)``.
FORWARDERS = {
    ("obs/throttle.py", "warn"),  # ThrottledWarnings(logger, "event"): read at the constructor
    ("obs/throttle.py", "flush"),  # ... and its "<event>_suppressed" summary line
    ("bot/engine.py", "_log"),  # self._log(level, "event", ...): read at each call
    ("bot/orders.py", "_log"),
    ("bot/rebalancer.py", "_log"),
}
#: Metric family constructors (kasmm's backends and prometheus_client's) and their type.
FAMILY_CONSTRUCTORS = {
    "gauge": "gauge",
    "counter": "counter",
    "histogram": "histogram",
    "GaugeMetricFamily": "gauge",
    "CounterMetricFamily": "counter",
    "HistogramMetricFamily": "histogram",
    "Gauge": "gauge",
    "Counter": "counter",
    "Histogram": "histogram",
    "Summary": "summary",
    "Info": "info",
    "Enum": "stateset",
}
#: Families' own shorthands (``g("kasmm_...", ...)`` in families.py): read from the object.
FAMILY_SHORTHANDS = {"g", "c", "h", "_gauge", "_counter", "_histogram"}
#: Calls that take a ``kasmm_`` string first that is not a metric name.
NOT_METRICS = {"ContextVar"}


# --- the README section ------------------------------------------------------------------------


def section(title: str) -> str:
    """The text of the README's ``## Observability`` subsection ``### title``."""
    text = README.read_text(encoding="utf-8")
    start = text.find("\n## Observability\n")
    assert start >= 0, "README.md has no '## Observability' section"
    end = text.find("\n## ", start + 1)
    body = text[start : end if end >= 0 else len(text)]
    sub = re.search(rf"^### {re.escape(title)}\b.*?(?=^### |\Z)", body, re.M | re.S)
    assert sub is not None, f"README.md's Observability section has no '### {title}'"
    return sub.group(0)


def rows(text: str) -> Iterator[list[str]]:
    """Cells of each Markdown table row (pipes escaped as ``\\|`` stay inside a cell)."""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("|") and line.endswith("|") and not re.fullmatch(r"[|\s:-]+", line):
            yield [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]


def backticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def documented(title: str, pattern: str) -> dict[str, list[str]]:
    """Rows of ``### title`` whose first cell is one backticked name matching ``pattern``."""
    found: dict[str, list[str]] = {}
    for cells in rows(section(title)):
        match = re.fullmatch(rf"`({pattern})`", cells[0])
        if match is None:
            continue
        name = match.group(1)
        assert name not in found, f"README.md: {name} has two rows under '### {title}'"
        found[name] = cells[1:]
    return found


# --- metrics -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    kind: str
    labels: frozenset[str]


def exported(name: str, kind: str) -> str:
    """The name a family's samples carry (prometheus_client appends ``_total`` to counters)."""
    return name.removesuffix("_total") + "_total" if kind == "counter" else name


class _Recorder:
    """A :class:`kasmm.obs.families.Backend` that only notes what it is asked to make."""

    def __init__(self) -> None:
        self.families: dict[str, Family] = {}

    def _make(self, kind: str, name: str, labels: Sequence[str]) -> Any:
        self.families[exported(name, kind)] = Family(kind, frozenset(labels))
        return None  # Families only keeps them; nothing is added here

    def gauge(self, name: str, doc: str, labels: Sequence[str]) -> Any:
        return self._make("gauge", name, labels)

    def counter(self, name: str, doc: str, labels: Sequence[str]) -> Any:
        return self._make("counter", name, labels)

    def histogram(self, name: str, doc: str, labels: Sequence[str]) -> Any:
        return self._make("histogram", name, labels)


def _callee(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def code_metrics() -> dict[str, Family]:
    """Every metric family kasmm exports, by exported name."""
    recorder = _Recorder()
    Families(recorder)
    families = dict(recorder.families)
    shorthand: set[str] = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            first = node.args[0]
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                continue
            if not first.value.startswith("kasmm_"):
                continue
            callee, where = _callee(node), f"{path.relative_to(ROOT)}:{node.lineno}"
            if callee in FAMILY_SHORTHANDS:
                shorthand.add(first.value)
            elif callee in FAMILY_CONSTRUCTORS:
                kind = FAMILY_CONSTRUCTORS[callee]
                labels = node.args[2] if len(node.args) > 2 else None
                for kw in node.keywords:
                    if kw.arg in ("labels", "labelnames"):
                        labels = kw.value
                assert labels is not None, f"{where}: {first.value} declares no labels"
                families[exported(first.value, kind)] = Family(
                    kind, frozenset(ast.literal_eval(labels))
                )
            else:
                assert callee in NOT_METRICS, (
                    f"{where}: {callee}({first.value!r}, ...): a metric family? Add its "
                    "constructor to FAMILY_CONSTRUCTORS, or the call to NOT_METRICS"
                )
    # The walk saw what the object made (else families.py changed shape and the walk is blind).
    made = {n.removesuffix("_total") for n in recorder.families}
    assert {n.removesuffix("_total") for n in shorthand} == made
    return families


def test_every_metric_family_is_documented_with_its_type_and_labels() -> None:
    code = code_metrics()
    assert "kasmm_mid_price" in code and "kasmm_shard_up" in code  # the walk found both kinds
    docs = documented("Metrics", r"kasmm_[a-z0-9_]+")
    assert sorted(set(code) - set(docs)) == [], "metric families missing from README.md"
    assert sorted(set(docs) - set(code)) == [], "README.md documents families kasmm lacks"
    for name, family in sorted(code.items()):
        kind, labels = docs[name][0], docs[name][1]
        assert kind == family.kind, f"{name}: README says {kind}, the code makes a {family.kind}"
        named = set(backticked(labels)) | (set(PROFILE_LABELS) if labels.startswith("P") else set())
        assert named == set(family.labels), f"{name}: README labels {sorted(named)}"


def test_the_profile_labels_are_the_ones_the_readme_names() -> None:
    text = section("Metrics")
    assert f"**P** = {', '.join(f'`{label}`' for label in PROFILE_LABELS)}" in text


# --- alert rules ---------------------------------------------------------------------------------


def test_every_alert_rule_is_documented_with_its_severity() -> None:
    doc = YAML(typ="safe").load(ALERTS.read_text(encoding="utf-8"))
    alerts = {
        rule["alert"]: rule["labels"]["severity"]
        for group in doc["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    assert len(alerts) >= 10
    docs = documented("Alert rules", r"Kasmm[A-Za-z0-9]+")
    assert sorted(set(alerts) - set(docs)) == [], "alerts missing from README.md"
    assert sorted(set(docs) - set(alerts)) == [], "README.md documents alerts alerts.yml lacks"
    for name, severity in alerts.items():
        assert docs[name][1] == severity, f"{name}: README says {docs[name][1]}, not {severity}"


# --- log events ----------------------------------------------------------------------------------


def _strings(node: ast.expr) -> list[str] | None:
    """The literal strings an expression can be (both branches of ``a if c else b``)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        body, orelse = _strings(node.body), _strings(node.orelse)
        return None if body is None or orelse is None else body + orelse
    return None


def _pairs(level: ast.expr, event: ast.expr) -> list[tuple[str, str]] | None:
    """``(event, level)`` of ``_log(level, event)``; branch by branch under one condition."""
    if (
        isinstance(level, ast.IfExp)
        and isinstance(event, ast.IfExp)
        and ast.dump(level.test) == ast.dump(event.test)
    ):
        body, orelse = _pairs(level.body, event.body), _pairs(level.orelse, event.orelse)
        return None if body is None or orelse is None else body + orelse
    levels, events = _strings(level), _strings(event)
    if levels is None or events is None:
        return None
    return [(e, lv) for e in events for lv in levels]


class _EventWalker(ast.NodeVisitor):
    def __init__(self, path: str) -> None:
        self.path = path
        self.function = ""
        self.events: list[tuple[str, str]] = []
        self.unreadable: list[str] = []

    def _enter(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        outer, self.function = self.function, node.name
        self.generic_visit(node)
        self.function = outer

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._enter(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._enter(node)

    def visit_Call(self, node: ast.Call) -> None:
        found = self._events(node)
        if found is not None:
            if found:
                self.events.extend(found)
            elif (self.path, self.function) not in FORWARDERS:
                self.unreadable.append(f"kasmm/{self.path}:{node.lineno}: {ast.unparse(node)}")
        self.generic_visit(node)

    def _events(self, node: ast.Call) -> list[tuple[str, str]] | None:
        """The call's ``(event, level)`` pairs; ``[]`` if unreadable; ``None``: no log call."""
        func, args = node.func, node.args
        if isinstance(func, ast.Attribute):
            receiver = ast.unparse(func.value).lower()
            if func.attr in LOG_METHODS and "log" in receiver and args:
                events = _strings(args[0])
                return [] if events is None else [(e, LOG_METHODS[func.attr]) for e in events]
            if func.attr == "_log" and len(args) >= 2:
                return _pairs(args[0], args[1]) or []
        if isinstance(func, ast.Name) and func.id == "Log" and len(args) >= 2:
            return _pairs(args[0], args[1]) or []
        if isinstance(func, ast.Name) and func.id == "ThrottledWarnings" and len(args) >= 2:
            events = _strings(args[1])
            if events is None:
                return []
            return [(e + tail, "warning") for e in events for tail in ("", "_suppressed")]
        return None


def code_events() -> dict[str, set[str]]:
    """Every structured log event kasmm emits, with the levels it is emitted at."""
    events: dict[str, set[str]] = defaultdict(set)
    unreadable: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        walker = _EventWalker(path.relative_to(PACKAGE).as_posix())
        walker.visit(ast.parse(path.read_text(encoding="utf-8")))
        for event, level in walker.events:
            events[event].add(level)
        unreadable += walker.unreadable
    assert unreadable == [], "log events the catalogue cannot be checked against (use a literal)"
    # Written without a logger: the forced exit's line comes from a signal handler with one
    # os.write (a logger's lock could be held by the interrupted code), in both formats.
    for file, event, level in RAW_EVENTS:
        source = (PACKAGE / file).read_text(encoding="utf-8")
        assert f'"event": "{event}"' in source and f"] {event} " in source, (file, event)
        events[event].add(level)
    return dict(events)


#: (file, event, level) of log lines written without a logger (checked in the source).
RAW_EVENTS = (("daemon/signals.py", "forced_exit", "error"),)


def test_every_log_event_is_in_the_catalogue_with_its_levels() -> None:
    code = code_events()
    # The walk sees each kind of call site: a module logger, a bound one, the engine's _log
    # with a conditional level and event, and the throttled warnings' summary line.
    for event in ("supervisor_ready", "profile_gave_up", "fill", "obligation_met"):
        assert event in code
    assert code["control_request_failed_suppressed"] == {"warning"}
    docs = documented("Log events", r"[a-z][a-z0-9_]*")
    assert sorted(set(code) - set(docs)) == [], "log events missing from README.md's catalogue"
    assert sorted(set(docs) - set(code)) == [], "README.md's catalogue names events kasmm lacks"
    for event, levels in sorted(code.items()):
        named = [level.strip() for level in docs[event][0].split(",")]
        assert set(named) <= set(LEVELS), f"{event}: unknown level in {named}"
        assert set(named) == levels, f"{event}: README says {named}, the code logs {levels}"


def test_the_walk_reads_conditional_levels_branch_by_branch() -> None:
    call = ast.parse(
        "self._log('warning' if bad else 'info',"
        " 'obligation_breached' if bad else 'obligation_met')"
    ).body[0]
    assert isinstance(call, ast.Expr) and isinstance(call.value, ast.Call)
    walker = _EventWalker("bot/engine.py")
    walker.visit(call)
    assert walker.events == [("obligation_breached", "warning"), ("obligation_met", "info")]
