"""``kasmm report``: a self-contained HTML page from a hand-made ledger of two profiles.

Needs matplotlib (the ``report`` extra); the Chromium rendering check also needs Chromium.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import shutil
import sys
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType

import matplotlib  # noqa: F401  (the dev extra installs it; the tests must not skip)
import pytest

from kasmm.commands.report import report_command
from kasmm.core.types import ClientOrderId, Fill, Side, TradeId
from kasmm.store import Ledger

D = Decimal
T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
NOW = T0 + 1000
EVIL = '<img src="http://evil.example/x.png">'
ROOT = Path(__file__).resolve().parents[2]


def fill(n: int, side: Side, price: str, size: str, fee: str, asset: str, dt: float) -> Fill:
    return Fill(
        trade_id=TradeId(f"t{n}"),
        client_id=ClientOrderId(f"c{n}"),
        side=side,
        price=D(price),
        size=D(size),
        fee=D(fee),
        fee_asset=asset,
        ts=T0 + dt,
        is_maker=n != 3,
    )


def build_ledger(state: Path) -> Path:
    """Two profiles: ``alpha`` (KAS/USDT, four fills, a halt and a reset) and ``beta``."""
    path = state / "kasmm.sqlite"
    with Ledger(path) as ledger:
        a = "alpha"
        ledger.set_opening(a, D(1000), D("0.08"), T0)
        ledger.record_mode(a, T0, "passive", "start")
        ledger.record_mode(a, T0 + 200, "aggressive", "schedule")
        for n, side, price, dt in (
            (1, Side.BUY, "0.0799", 10),
            (2, Side.SELL, "0.0805", 10),
            (3, Side.BUY, "0.0810", 130),
            (4, Side.SELL, "0.0850", 170),
        ):
            ledger.record_order(a, ClientOrderId(f"o{n}"), side, D(price), D(500), T0 + dt)
        ledger.record_order_status(a, ClientOrderId("o1"), "filled", T0 + 60)
        ledger.record_order_status(a, ClientOrderId("o2"), "cancelled", T0 + 100)
        ledger.record_order_status(a, ClientOrderId("o4"), "filled", T0 + 180)
        for f in (
            fill(1, Side.BUY, "0.080", "1000", "0.04", "USDT", 60),
            fill(2, Side.BUY, "0.082", "500", "0.02", "USDT", 120),
            fill(3, Side.SELL, "0.085", "800", "0.034", "USDT", 180),
            fill(4, Side.SELL, "0.079", "200", "2", "KAS", 240),
        ):
            ledger.record_fill(a, f)
        for dt, equity, mid, base, quote in (
            (0, "280", "0.08", "1000", "200"),
            (90, "282", "0.081", "2000", "120"),
            (150, "286.5", "0.083", "2500", "79"),
            (210, "289.8", "0.084", "1700", "147"),
            (270, "279.644", "0.078", "1498", "162.8"),
        ):
            ledger.record_equity(a, T0 + dt, D(equity), D(mid), D(base), D(quote))
        details = {"value": D("10.156"), "limit": D("10"), "detail": f"peak 289.8 {EVIL}"}
        ledger.record_risk_event(a, T0 + 265, "trip", "max_drawdown", "halt", "halted", details)
        assert ledger.reset(a, T0 + 300, "ops<eve>")

        b = "beta"
        ledger.record_mode(b, T0 + 20, "passive", "start")
        ledger.record_fill(b, fill(11, Side.BUY, "1.5", "100", "0.1", "USDC", 30))
        ledger.record_fill(b, fill(12, Side.SELL, "1.6", "40", "0", "USDC", 400))
        ledger.record_equity(b, T0 + 20, D("1000"), D("1.5"), D("0"), D("1000"))
        ledger.record_equity(b, T0 + 420, D("1004"), D("1.6"), D("60"), D("908"))
    return state


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return build_ledger(tmp_path / "state")


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The report of :func:`build_ledger` with the defaults, rendered once for the tests that
    only read it (a string: nothing to share but its text). About 1 s a rendering."""
    tmp_path = tmp_path_factory.mktemp("report")
    return make(build_ledger(tmp_path / "state"), tmp_path)


def write_profiles(directory: Path) -> Path:
    directory.mkdir()
    (directory / "alpha.yaml").write_text(
        "venue: {type: sim, balances: {KAS: 1000, USDT: 200}}\n"
        "symbol: KAS/USDT\n"
        "modes:\n"
        "  aggressive: {spread_bps: 20, size: 100}\n"
        "  passive: {spread_bps: 40, size: 100}\n"
        "inventory: {target_share: 0.4, min_share: 0.2, max_share: 0.8}\n"
    )
    # A live profile whose keys are not in this environment still gives its symbol and target.
    (directory / "beta.yaml").write_text(
        "venue:\n"
        "  type: ccxt\n"
        "  exchange: mexc\n"
        "  credentials: {api_key: '${KASMM_TEST_UNSET_KEY}', secret: '${KASMM_TEST_UNSET_S}'}\n"
        "symbol: BTC/USDC\n"
        "modes:\n"
        "  aggressive: {spread_bps: 20, size: 1}\n"
        "  passive: {spread_bps: 40, size: 1}\n"
        "inventory: {target_base: 50}\n"
        "kill_switch: {max_drawdown: {pct: 5}, max_daily_loss: {quote: 50}}\n"
    )
    (directory / "broken.yaml").write_text("name: [oops\n")
    return directory


def make(state: Path, tmp_path: Path, **kwargs: object) -> str:
    out = tmp_path / "report.html"
    assert report_command(state, out, now=NOW, **kwargs) == 0  # type: ignore[arg-type]
    return out.read_text(encoding="utf-8")


class Tables(HTMLParser):
    """Cell texts of every table row, per profile section (``None``: the page header)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str | None, list[list[str]]] = {}
        self.section: str | None = None
        self.row: list[str] | None = None
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "section":
            self.section = dict(attrs).get("data-profile")
        elif tag == "tr":
            self.row = []
        elif tag in ("td", "th") and self.row is not None:
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self.row is not None and self.cell is not None:
            self.row.append(" ".join("".join(self.cell).split()))
            self.cell = None
        elif tag == "tr" and self.row is not None:
            self.rows.setdefault(self.section, []).append(self.row)
            self.row = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def tables(page: str) -> dict[str | None, list[list[str]]]:
    parser = Tables()
    parser.feed(page)
    return parser.rows


def kv(rows: list[list[str]]) -> dict[str, str]:
    return {r[0]: r[1] for r in rows if len(r) == 2}


def sections(page: str) -> list[str]:
    return re.findall(r'<section class="profile" id="profile-\d+" data-profile="([^"]*)"', page)


class Refs(HTMLParser):
    """Every tag name, and every attribute that makes a browser fetch or navigate."""

    URL_ATTRS = frozenset({"src", "href", "xlink:href", "srcset", "action", "poster", "data"})

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.refs += [v or "" for k, v in attrs if k in self.URL_ATTRS]

    handle_startendtag = handle_starttag


def test_self_contained(page: str) -> None:
    refs = Refs()
    refs.feed(page)
    assert refs.refs, "the page links its sections; the charts reference their own glyphs"
    assert all(r.startswith(("#", "data:")) for r in refs.refs), refs.refs
    assert not refs.tags & {"script", "link", "iframe", "object", "embed", "img", "base"}
    assert "@import" not in page
    assert not re.search(r"url\((?!#)", page), "only same-document url(#id) references"
    assert "default-src 'none'" in page  # and a CSP forbids any fetch anyway
    # The only URL on the page is the one the ledger's risk event carries, shown as text.
    shown = "peak 289.8 &lt;img src=&quot;http://evil.example/x.png&quot;&gt;"
    assert page.count(shown) == 1
    assert "http://" not in page.replace(shown, "") and "https://" not in page
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert [i for i, n in Counter(ids).items() if n > 1] == [], "ids must be unique per page"


def test_dense_layers_are_embedded_pngs(
    state: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kasmm.report import charts

    monkeypatch.setattr(charts, "RASTER_THRESHOLD", 0)
    page = make(state, tmp_path)
    assert "data:image/png;base64," in page
    refs = Refs()
    refs.feed(page)
    assert all(r.startswith(("#", "data:")) for r in refs.refs)


def test_one_section_per_profile_with_svg_charts(page: str) -> None:
    assert sections(page) == ["alpha", "beta"]
    alpha, beta = page.split('data-profile="beta"')
    assert alpha.count("<svg") == 4  # price, inventory, pnl, drawdown
    assert beta.count("<svg") == 4
    assert page.count("<svg") == page.count("</svg>") == 8
    # no fixed width/height: the charts scale with the page, their viewBox keeps the aspect
    assert len(re.findall(r'<svg aria-label="[^"]+" class="chart" role="img" viewBox=', page)) == 8
    for title in ("Mid, own resting quotes and fills", "Inventory", "PnL over the period"):
        assert f"<h3>{title}</h3>" in alpha
    assert "<h3>Drawdown from the period&#x27;s peak equity</h3>" in alpha
    assert "kasmm report" in page and "Generated" in page
    header = kv(tables(page)[None])
    assert header["Generated"] == "2023-11-14 22:30:00 UTC"
    assert header["Period"] == "2023-11-14 22:13:20 UTC (first record) → 2023-11-14 22:30:00 UTC"


def test_fills_summary_hand_computed(page: str) -> None:
    rows = tables(page)
    alpha = rows["alpha"]
    head = ["side", "fills", "maker", "volume (base)", "notional (quote)", "avg price (quote)"]
    assert [*head, "fees"] in alpha
    # buys: 1000 @ 0.080 + 500 @ 0.082 = 121 for 1500, avg 0.080666...
    assert ["buy", "2", "2", "1,500", "121", "0.08066667", "0.06 USDT"] in alpha
    # sells: 800 @ 0.085 + 200 @ 0.079 = 83.8 for 1000; fill 3 was a taker
    assert ["sell", "2", "1", "1,000", "83.8", "0.0838", "2 KAS, 0.034 USDT"] in alpha
    assert ["total", "4", "3", "2,500", "204.8", "—", "2 KAS, 0.094 USDT"] in alpha
    overview = kv(alpha)
    assert overview["Realized PnL in period"] == "+3.40 quote (average cost, before fees)"
    assert overview["Equity"] == "280.00 → 279.64 quote (-0.36)"
    assert overview["Max drawdown in period"] == (
        "10.16 quote (3.50 % of peak 289.80) at 2023-11-14 22:17:50 UTC"
    )
    assert overview["Kill switch"] == "1 trips, 1 resets in period"
    assert overview["Mode at the end"] == "aggressive (since 2023-11-14 22:16:40 UTC)"
    beta = rows["beta"]
    assert ["buy", "1", "1", "100", "150", "1.5", "0.1 USDC"] in beta
    assert ["sell", "1", "1", "40", "64", "1.6", "0"] in beta


def test_kill_switch_and_mode_tables(page: str) -> None:
    alpha = tables(page)["alpha"]
    trip = [r for r in alpha if r[:2] == ["2023-11-14 22:17:45 UTC", "trip"]]
    assert trip == [
        [
            "2023-11-14 22:17:45 UTC",
            "trip",
            "max_drawdown",
            "halt",
            "halted",
            f"value: 10.156; limit: 10; detail: peak 289.8 {EVIL}",  # shown as text
        ]
    ]
    reset = [r for r in alpha if r[1:2] == ["reset"]]
    assert reset[0][2] == "max_drawdown"
    assert reset[0][5] == (
        "halt_rule: max_drawdown; halt_ts: 2023-11-14 22:17:45 UTC; operator: ops<eve>"
    )
    assert ["2023-11-14 22:13:20 UTC", "passive", "start"] in alpha
    assert ["2023-11-14 22:16:40 UTC", "aggressive", "schedule"] in alpha
    # Text from the ledger is escaped, never markup.
    assert EVIL not in page and "ops<eve>" not in page
    assert "operator: ops&lt;eve&gt;" in page
    assert "HALTED" not in page  # the halt was reset


def test_text_from_the_ledger_is_escaped(tmp_path: Path) -> None:
    name = 'x"><script>alert(1)</script>'
    with Ledger(tmp_path / "state" / "kasmm.sqlite") as ledger:
        ledger.record_risk_event(
            name, T0, "trip", "stale_book", "halt", "halted", {"detail": "<b>"}
        )
        ledger.record_mode(name, T0, "<i>", "start")
    page = make(tmp_path / "state", tmp_path)
    assert "<script" not in page and "<b>" not in page and "<i>" not in page
    assert sections(page) == ["x&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"]
    assert "HALTED since 2023-11-14 22:13:20 UTC by stale_book" in page


def test_profile_filter(state: Path, tmp_path: Path) -> None:
    page = make(state, tmp_path, profiles=["beta"])
    assert sections(page) == ["beta"]
    assert "alpha" not in page


def test_unknown_profile_is_a_usage_error(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.html"
    assert report_command(state, out, profiles=["gamma"], now=NOW) == 2
    err = capsys.readouterr().err
    assert "no profile gamma in the ledger" in err and "(it holds alpha, beta)" in err
    assert not out.exists()


@pytest.mark.parametrize("since", [str(T0 + 150), "2023-11-14T22:15:50Z", "850s", "14m10s"])
def test_since_filter(state: Path, tmp_path: Path, since: str) -> None:
    # every form means T0 + 150 (NOW is T0 + 1000)
    page = make(state, tmp_path, since=since)
    rows = tables(page)
    alpha = rows["alpha"]
    assert ["buy", "0", "0", "0", "0", "—", "0"] in alpha
    assert ["sell", "2", "1", "1,000", "83.8", "0.0838", "2 KAS, 0.034 USDT"] in alpha
    overview = kv(alpha)
    # the average cost still comes from the earlier fills: 0.0804
    assert overview["Realized PnL in period"] == "+3.40 quote (average cost, before fees)"
    assert overview["Equity"] == "286.50 → 279.64 quote (-6.86)"
    assert "passive" not in [r[1] for r in alpha if len(r) == 3]  # mode from before the period
    assert "In force at the start: passive" in page
    beta = rows["beta"]
    assert ["buy", "0", "0", "0", "0", "—", "0"] in beta
    assert kv(rows[None])["Period"] == "2023-11-14 22:15:50 UTC → 2023-11-14 22:30:00 UTC"


def test_since_after_everything_says_no_records(state: Path, tmp_path: Path) -> None:
    page = make(state, tmp_path, since="1m")
    assert sections(page) == ["alpha", "beta"]
    assert page.count("No records in this period.") == 2
    assert "No profile has records in this period." in page
    assert "<svg" not in page


def test_bad_since_is_a_usage_error(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert report_command(state, tmp_path / "r.html", since="last tuesday", now=NOW) == 2
    assert "expected a duration" in capsys.readouterr().err


def test_profiles_dir_adds_asset_names_and_target(state: Path, tmp_path: Path) -> None:
    profiles = write_profiles(tmp_path / "profiles")
    page = make(state, tmp_path, profiles_dir=profiles)
    rows = tables(page)
    alpha = kv(rows["alpha"])
    assert alpha["Profile file"] == str(profiles / "alpha.yaml")
    # target share 0.4 of 279.644 at mid 0.078
    assert alpha["Target at the end"] == "1,434.07179487 KAS (40.0 % of value)"
    assert alpha["Fees in period"] == "0.25 USDT"  # 2 KAS valued at 0.079: 0.252
    assert alpha["Realized PnL in period"] == "+3.40 USDT (average cost, before fees)"
    assert [
        "side",
        "fills",
        "maker",
        "volume (KAS)",
        "notional (USDT)",
        "avg price (USDT)",
        "fees",
    ] in rows["alpha"]
    beta = kv(rows["beta"])
    # target_base 50 BTC is below the default min_share (10 % of value): the quoting core holds
    # the target inside the caps, and the report shows the target the core aimed at.
    assert beta["Target at the end"] == "62.75 BTC (10.0 % of value)"
    assert "problem(s) in the profile files" in page and "broken.yaml" in page
    assert 'aria-label="alpha: Inventory vs target"' in page


def test_empty_ledger_gives_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Ledger(tmp_path / "state" / "kasmm.sqlite").close()
    page = make(tmp_path / "state", tmp_path)
    assert "holds no records yet: nothing to report." in page
    assert sections(page) == []
    assert "holds no records yet" in capsys.readouterr().err


def test_unreadable_ledger_and_bad_out_are_usage_errors(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert report_command(state, tmp_path, now=NOW) == 2
    assert "is a directory" in capsys.readouterr().err
    assert report_command(state, tmp_path / "no" / "r.html", now=NOW) == 2
    assert "does not exist" in capsys.readouterr().err
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "kasmm.sqlite").write_bytes(b"not a database, just bytes" * 100)
    assert report_command(junk, tmp_path / "r.html", now=NOW) == 2
    assert "cannot read the ledger" in capsys.readouterr().err


def test_missing_ledger_is_a_usage_error_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "nowhere"
    assert report_command(state, tmp_path / "r.html", now=NOW) == 2
    assert f"no ledger at {state / 'kasmm.sqlite'}" in capsys.readouterr().err
    assert not state.exists()
    assert not (tmp_path / "r.html").exists()


def test_cli_subcommand(state: Path, tmp_path: Path) -> None:
    from kasmm import cli

    parser = cli._build_parser()
    subcommands = next(
        a for a in parser._actions if a.dest == "command"
    ).choices  # argparse has no public API for this
    assert subcommands is not None and "report" in subcommands
    out = tmp_path / "cli.html"
    argv = ["report", "--state-dir", str(state), "--profile", "alpha", "--out", str(out)]
    assert cli.main(argv) == 0
    assert sections(out.read_text(encoding="utf-8")) == ["alpha"]


# --- rendering in a real browser ------------------------------------------------------------


@functools.cache
def _render_script() -> ModuleType:
    """scripts/render_report_check.py as a module (scripts/ is not a package)."""
    name = "render_report_check"
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


def test_png_decoder_handles_every_filter(tmp_path: Path) -> None:
    """The script's zlib PNG decoder (used when Pillow is absent), on all five row filters."""
    import zlib

    script = _render_script()
    width, channels = 3, 3
    pixels = [bytes((10 * y + x * 40) % 256 for x in range(width * channels)) for y in range(5)]

    def filtered(kind: int, row: bytes, prev: bytes) -> bytes:
        out = bytearray()
        for i, v in enumerate(row):
            a = row[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            pred = [0, a, b, (a + b) >> 1, script._paeth(a, b, c)][kind]
            out.append((v - pred) & 0xFF)
        return bytes([kind]) + bytes(out)

    raw = b"".join(
        filtered(k, row, pixels[k - 1] if k else bytes(width * channels))
        for k, row in enumerate(pixels)
    )

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return len(body).to_bytes(4, "big") + kind + body + crc.to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + (5).to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
    png += chunk(b"IEND", b"")
    image = script.decode_png(png)
    assert (image.width, image.height, image.channels) == (3, 5, 3)
    assert image.rows == pixels


_NO_CHROMIUM = shutil.which("chromium") is None and shutil.which("chromium-browser") is None
if _NO_CHROMIUM and os.environ.get("CI"):
    raise RuntimeError("CI must render the report in Chromium (.ci/run installs it)")


@pytest.mark.skipif(
    _NO_CHROMIUM,
    reason="Chromium is not installed (Debian: apt-get install -y chromium); "
    "the headless rendering check is skipped",
)
def test_renders_in_headless_chromium(state: Path, tmp_path: Path) -> None:
    script = _render_script()
    page = tmp_path / "report.html"
    assert report_command(state, page, now=NOW) == 0
    png = tmp_path / "shot.png"
    script.screenshot(page, png)
    ink = script.measure(script.load_png(png))
    assert (ink.width, ink.height) == script.WINDOW
    assert script.check(ink) == [], ink
    # the charts are drawn: plenty of colored (non-grey) pixels across the page
    assert sum(1 for band in ink.bands if band > 0.01) >= 4, ink.bands


def test_render_check_flags_a_blank_page(tmp_path: Path) -> None:
    script = _render_script()
    white = script.Image(4, 4, 3, [bytes([255] * 12)] * 4)
    problems = script.check(script.measure(white))
    assert len(problems) == 3


def _iso(ts: float) -> str:  # keeps the expected strings above honest
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def test_expected_times() -> None:
    assert _iso(T0) == "2023-11-14 22:13:20 UTC"
    assert _iso(NOW) == "2023-11-14 22:30:00 UTC"
    assert _iso(T0 + 150) == "2023-11-14 22:15:50 UTC"


def test_pnl_attribution_hand_computed(page: str) -> None:
    # alpha opened 1,000 KAS at 0.08; realized 3.4 (3.68 - 0.28), fees 0.252 (2 KAS at 0.079),
    # 1,500 KAS left at average cost 0.0804 marked 0.078: revaluation -3.6, net -0.452; holding
    # the 1,000 KAS alone: -2.0, so market making earned 1.548 against holding.
    alpha = tables(page)["alpha"]
    head = ["day (UTC)", "fills", "volume (quote)", "spread capture", "fees", "revaluation"]
    assert [*head, "net", "hold", "net vs hold"] in alpha
    day = ["4", "204.80", "+3.40", "0.25", "-3.60", "-0.45", "-2.00", "+1.55"]
    assert ["2023-11-14", *day] in alpha
    assert ["period", *day] in alpha
    assert "<h3>PnL attribution</h3>" in page
    assert "market making earned 1.55 quote against holding" in page


def test_pnl_attribution_of_a_period(state: Path, tmp_path: Path) -> None:
    # From T0 + 150: before it, 2,500 KAS at 0.0804 marked 0.081 and fees 0.06 (net 1.44, hold
    # 1.0); at the end net -0.452, hold -2.0. The period: net -1.892, hold -3.0, vs hold 1.108.
    page = make(state, tmp_path, since=str(T0 + 150))
    alpha = tables(page)["alpha"]
    assert ["period", "2", "83.80", "+3.40", "0.19", "-5.10", "-1.89", "-3.00", "+1.11"] in alpha
