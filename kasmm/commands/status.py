"""``kasmm status``: ask a running supervisor's control endpoint how its profiles are doing."""

from __future__ import annotations

import http.client
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from kasmm import __version__
from kasmm.control import parse_addr

TIMEOUT_S = 5.0
#: A status document is a few KiB; refuse to buffer something absurd from a wrong port.
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
ERROR_WIDTH = 60

#: (header, status key, right-aligned)
COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("PROFILE", "name", False),
    ("STATE", "state", False),
    ("MODE", "mode", False),
    ("MID", "mid", True),
    ("SPREAD_BPS", "spread_bps", True),
    ("INVENTORY", "inventory_base", True),
    ("OPEN", "open_orders", True),
    ("PNL", "net_pnl", True),
    ("WHY", "why", False),
    ("LAST_ERROR", "last_error", False),
)


class StatusFetchError(Exception):
    """A one-line, user-facing reason why the status could not be fetched."""


def _cell(value: Any, width: int | None = None) -> str:
    """One table cell: '-' for missing, single line, printable, optionally truncated."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, float):
        text = format(value, ".10g")
    else:
        text = str(value)
    # Exchange error texts can hold newlines or escape sequences; keep one row per profile
    # and keep the terminal sane.
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    if not text:
        return "-"
    if width is not None and len(text) > width:
        text = text[: width - 3] + "..."
    return text


def _duration(seconds: Any) -> str:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return "-"
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def render_table(data: Mapping[str, Any]) -> str:
    """Render a status document as a summary line plus one table row per profile."""
    sup = data.get("supervisor")
    sup = sup if isinstance(sup, Mapping) else {}
    summary = (
        f"supervisor pid={_cell(sup.get('pid'))} uptime={_duration(sup.get('uptime_s'))} "
        f"profiles={_cell(sup.get('profiles_total'))}"
    )
    if sup.get("healthy") is False:
        summary += f" UNHEALTHY: {_cell(sup.get('health'), ERROR_WIDTH)}"
    if sup.get("directory_missing"):
        summary += " (profile directory missing: running the last good profiles)"
    if sup.get("ledger_lost"):
        summary += " (LEDGER LOST)"
    profiles = data.get("profiles")
    rows: list[list[str]] = []
    for profile in profiles if isinstance(profiles, list) else []:
        p = profile if isinstance(profile, Mapping) else {}
        # Why a profile does not quote normally: a halt's rule and numbers, or why it quotes
        # nothing although trading is allowed.
        p = {**p, "why": p.get("halt_reason") or p.get("idle_reason")}
        rows.append(
            [
                _cell(p.get(key), ERROR_WIDTH if key == "last_error" else None)
                for _, key, _ in COLUMNS
            ]
        )
    headers = [h for h, _, _ in COLUMNS]
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(COLUMNS))]
    lines = [summary]
    for row in [headers, *rows]:
        cells = [
            cell.rjust(w) if right and row is not headers else cell.ljust(w)
            for cell, w, (_, _, right) in zip(row, widths, COLUMNS, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


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


def status_command(addr: str, as_json: bool) -> int:
    """``kasmm status``: print the supervisor status as a table, or as JSON with ``as_json``.

    :return: 0 on success, 1 if the supervisor cannot be reached or answers nonsense,
        2 if ``addr`` is not ``HOST:PORT``.
    """
    try:
        data = fetch_status(addr)
    except ValueError as exc:
        print(f"kasmm status: {exc}", file=sys.stderr)
        return 2
    except StatusFetchError as exc:
        print(f"kasmm status: {exc}", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps(data, indent=2))
    else:
        print(render_table(data))
    return 0
