"""``kasmm status``: ask a running supervisor's control endpoint how its profiles are doing."""

from __future__ import annotations

import http.client
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kasmm import __version__
from kasmm.console import rows
from kasmm.console.settlement_lines import settlement_lines
from kasmm.control import parse_addr
from kasmm.obs.money import NumberFormat

TIMEOUT_S = 5.0
#: A status document is a few KiB; refuse to buffer something absurd from a wrong port.
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
ERROR_WIDTH = 60
#: ``--watch`` without a value refreshes this often.
WATCH_DEFAULT_S = 2.0

#: (header, right-aligned); the cells come from :func:`_cells`.
COLUMNS: tuple[tuple[str, bool], ...] = (
    ("PROFILE", False),
    ("STATE", False),
    ("MODE", False),
    ("MID", True),
    ("BID", True),
    ("ASK", True),
    ("SPREAD_BPS", True),
    ("INVENTORY", True),
    ("OPEN", True),
    ("FILLS", True),
    ("PNL", True),
    ("WHY", False),
    ("LAST_ERROR", False),
)


class StatusFetchError(Exception):
    """A one-line, user-facing reason why the status could not be fetched."""


def _cells(row: Mapping[str, Any]) -> list[str]:
    """One profile's cells: own best bid/ask and their spread (bps of their midpoint), money
    rounded to the market's precision, why it does not quote normally."""
    fmt = rows.number_format(row)
    pnl = rows.pnl_parts(row, fmt).get("net")
    return [
        rows.cell(row.get("name")),
        rows.cell(row.get("state")),
        rows.cell(row.get("mode")),
        fmt.price(rows.decimal(row.get("mid"))),
        fmt.price(rows.decimal(row.get("own_bid"))),
        fmt.price(rows.decimal(row.get("own_ask"))),
        rows.bps(row.get("own_spread_bps")),
        fmt.size(rows.decimal(row.get("inventory_base"))),
        rows.cell(row.get("open_orders")),
        rows.cell(rows.fills(row)),
        rows.cell(pnl),
        rows.cell(rows.why(row)),
        rows.cell(row.get("last_error"), ERROR_WIDTH),
    ]


def render_table(data: Mapping[str, Any], *, settlements: bool = True) -> str:
    """Render a status document: a summary line, one table row per profile (disabled ones
    too), the portfolios, the settlements (unless ``settlements`` is false), then the config
    errors, if any."""
    sup = rows.supervisor(data)
    summary = (
        f"supervisor pid={rows.cell(sup.get('pid'))} uptime={rows.duration(sup.get('uptime_s'))} "
        f"profiles={rows.cell(sup.get('profiles_total'))}"
    )
    if sup.get("healthy") is False:
        summary += f" UNHEALTHY: {rows.cell(sup.get('health'), ERROR_WIDTH)}"
    if sup.get("directory_missing"):
        summary += " (profile directory missing: running the last good profiles)"
    if sup.get("ledger_lost"):
        summary += " (LEDGER LOST)"
    table = [_cells(row) for row in rows.profiles(data)]
    headers = [h for h, _ in COLUMNS]
    widths = [max(len(r[i]) for r in [headers, *table]) for i in range(len(COLUMNS))]
    lines = [summary]
    for row in [headers, *table]:
        cells = [
            cell.rjust(w) if right and row is not headers else cell.ljust(w)
            for cell, w, (_, right) in zip(row, widths, COLUMNS, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    groups = rows.portfolios(data)
    if groups:
        lines.append("")
        lines.extend(_portfolio_line(group) for group in groups)
    settled = settlement_lines(data) if settlements else []
    if settled:
        lines.append("")
        lines.extend(settled)
    errors = sup.get("config_errors")
    if isinstance(errors, list) and errors:
        lines.append("")
        lines.append(f"config errors ({len(errors)}; the last good version of each keeps running):")
        lines.extend(f"  {rows.cell(error)}" for error in errors)
    return "\n".join(lines)


def _portfolio_line(group: Mapping[str, Any]) -> str:
    """One portfolio: ``portfolio kas: halted: ... base=110000.5 share=68% / 31% pnl=-620.12``."""
    fmt = NumberFormat.for_market(None, None, rows.decimal(group.get("mark")))
    members = group.get("members")
    names = ", ".join(members) if isinstance(members, Mapping) else "-"
    return (
        f"portfolio {rows.cell(group.get('name'))}: {rows.group_state(group)}"
        f"  members={rows.cell(names)}"
        f"  base={fmt.size(rows.decimal(group.get('base')))}"
        f"  share={rows.cell(rows.group_share(group))}"
        f"  equity={fmt.money(rows.decimal(group.get('equity')))}"
        f"  pnl={fmt.money(rows.decimal(group.get('pnl')), sign=True)}"
    )


def _reason(exc: BaseException) -> str:
    # URLError wraps the socket error; "Connection refused" reads better than "[Errno 111] ...".
    inner = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(inner, OSError) and inner.strerror:
        return inner.strerror
    return str(inner) or type(inner).__name__


def fetch_status(addr: str, timeout: float = TIMEOUT_S) -> dict[str, Any]:
    """GET ``http://ADDR/status`` and return the decoded document.

    :raises ValueError: ``addr`` is not ``HOST:PORT``.
    :raises StatusFetchError: unreachable, non-200, or not a JSON object (one-line reason).
    """
    host, port = parse_addr(addr)
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    request = urllib.request.Request(
        f"http://{netloc}/status",
        headers={"Accept": "application/json", "User-Agent": f"kasmm/{__version__}"},
    )
    # No ProxyHandler entries: an http_proxy in the environment must not reroute a loopback call.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as response:
            body = response.read(MAX_RESPONSE_BYTES + 1)
    except urllib.error.HTTPError as exc:
        with exc:  # it holds the open response; close it
            raise StatusFetchError(
                f"supervisor at {addr} answered HTTP {exc.code} {exc.reason}"
            ) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise StatusFetchError(f"cannot reach supervisor at {addr}: {_reason(exc)}") from None
    if len(body) > MAX_RESPONSE_BYTES:
        raise StatusFetchError(
            f"response from supervisor at {addr} is larger than {MAX_RESPONSE_BYTES}"
        )
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise StatusFetchError(f"invalid JSON from supervisor at {addr}: {exc}") from None
    if not isinstance(data, dict):
        raise StatusFetchError(f"unexpected response from supervisor at {addr}: not a JSON object")
    return data


def status_command(
    addr: str, as_json: bool, watch: float | None = None, state_dir: Path | None = None
) -> int:
    """``kasmm status``: print the supervisor status as a table, or as JSON with ``as_json``.

    With no supervisor to answer, the settlements are still shown, read from the ledger of
    ``state_dir`` (``--state-dir``, ``$STATE_DIRECTORY``, ``./state``): a sweep started by
    ``kasmm settle`` is visible whether a supervisor runs or not.

    ``watch``: print it again every ``watch`` seconds until Ctrl-C, in place on a terminal
    (a plain reprint, separated by a blank line, on a dumb terminal or into a pipe).

    :return: 0 on success, 1 if the supervisor cannot be reached or answers nonsense,
        2 if ``addr`` is not ``HOST:PORT``.
    """
    try:
        parse_addr(addr)
    except ValueError as exc:
        print(f"kasmm status: {exc}", file=sys.stderr)
        return 2
    if watch is None:
        return _show(addr, as_json, state_dir)
    in_place = sys.stdout.isatty() and os.environ.get("TERM", "dumb") != "dumb"
    try:
        first = True
        while True:
            if in_place:
                sys.stdout.write("\x1b[H\x1b[2J")  # home, clear: the screen is redrawn
            elif not first:
                print()
            first = False
            print(time.strftime("%Y-%m-%d %H:%M:%S"), f"every {watch:g} s (Ctrl-C ends)")
            _show(addr, as_json, state_dir)
            sys.stdout.flush()
            time.sleep(watch)
    except KeyboardInterrupt:
        return 0


def _show(addr: str, as_json: bool, state_dir: Path | None = None) -> int:
    try:
        data = fetch_status(addr)
    except StatusFetchError as exc:
        print(f"kasmm status: {exc}", file=sys.stderr)
        _show_ledger(as_json, state_dir)
        return 1
    if as_json:
        print(json.dumps(data, indent=2))
    else:
        print(render_table(data))
    return 0


def ledger_settlements(state_dir: Path | None, wall: float | None = None) -> dict[str, Any] | None:
    """The ``settlements`` part of a status document, read from the ledger (``None``: no
    ledger there, or it cannot be read: said on stderr)."""
    from kasmm.store.db import LedgerError
    from kasmm.store.reader import LedgerReader
    from kasmm.store.state_dir import ledger_path, resolve_state_dir
    from kasmm.supervisor.settle_status import settlement_status

    path = ledger_path(resolve_state_dir(state_dir))
    if not path.is_file():
        return None
    try:
        with LedgerReader(path) as reader:
            overview = reader.settlement_overview()
    except LedgerError as exc:
        print(f"kasmm status: {exc}", file=sys.stderr)
        return None
    return settlement_status(overview, time.time() if wall is None else wall)


def _show_ledger(as_json: bool, state_dir: Path | None) -> None:
    """The settlements from the ledger, when no supervisor answers."""
    settlements = ledger_settlements(state_dir)
    if settlements is None:
        return
    doc = {"settlements": settlements}
    if as_json:
        print(json.dumps(doc, indent=2))
        return
    lines = settlement_lines(doc)
    print("\n".join(lines) if lines else "settlements: none in the ledger")
