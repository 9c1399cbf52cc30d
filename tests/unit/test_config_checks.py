"""Cross-field checks, the JSON schema command and the committed schema file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kasmm.commands.schema import profile_json_schema, schema_command
from kasmm.config import checks
from kasmm.config.schema import SUPPORTED_EXCHANGES, Profile
from tests.support import make_profile

REPO = Path(__file__).resolve().parents[2]
SCHEMA_FILE = REPO / "kasmm-profile.schema.json"


def _profile(**overrides: Any) -> Profile:
    return make_profile(**{"name": "p", **overrides})


def _ccxt(exchange: str, sandbox: bool = False) -> dict[str, Any]:
    return {
        "type": "ccxt",
        "exchange": exchange,
        "sandbox": sandbox,
        "credentials": {"api_key": "${K}", "secret": "${S}"},
    }


def test_valid_profile_passes_every_check() -> None:
    assert checks.run_checks(_profile()) == []
    assert set(checks.CHECKS) >= {"inventory", "mode_spreads", "exchange", "sandbox", "cron"}


@pytest.mark.parametrize(
    ("inventory", "path"),
    [
        ({"min_share": 0.7, "max_share": 0.3}, ("inventory", "min_share")),
        ({"target_share": 0.05}, ("inventory", "target_share")),
        ({"min_share": 0.6}, ("inventory", "min_share")),
        ({"max_share": 0.4}, ("inventory", "max_share")),
        ({"target_share": 0.5, "target_base": 100}, ("inventory", "target_base")),
        ({"min_base": 10, "max_base": 5}, ("inventory", "min_base")),
    ],
)
def test_inventory(inventory: dict[str, Any], path: tuple[str, ...]) -> None:
    assert [f[0] for f in checks.check_inventory(_profile(inventory=inventory))] == [path]


def test_target_base_alone_skips_the_share_target() -> None:
    assert checks.check_inventory(_profile(inventory={"min_share": 0.6, "target_base": 5})) == []


def test_exchange_list_in_message() -> None:
    [(path, message)] = checks.check_exchange(_profile(venue=_ccxt("binance")))
    assert path == ("venue", "exchange")
    assert all(ex in message for ex in SUPPORTED_EXCHANGES)


def test_sandbox_follows_installed_ccxt() -> None:
    for exchange in SUPPORTED_EXCHANGES:
        findings = checks.check_sandbox(_profile(venue=_ccxt(exchange, sandbox=True)))
        assert (findings == []) == checks.exchange_has_testnet(exchange)
    # Whatever the ccxt version, sandbox: false is always fine.
    assert checks.check_sandbox(_profile(venue=_ccxt("mexc"))) == []


def test_kill_rules() -> None:
    ks = {
        "stale_book": {"seconds": 5},  # action defaults to pause: pause_s needed
        "max_consecutive_errors": {"count": 3, "action": "halt"},
        "max_drawdown": {"action": "reduce_only"},
    }
    paths = [f[0] for f in checks.check_kill_rules(_profile(kill_switch=ks))]
    assert paths == [("kill_switch", "stale_book", "pause_s"), ("kill_switch", "max_drawdown")]


def test_timezones_everywhere() -> None:
    profile = _profile(
        schedule=[{"cron": "0 8 * * *", "mode": "aggressive", "timezone": "Nowhere/City"}],
        strategy={
            "type": "avellaneda_stoikov",
            "gamma": 0.1,
            "kappa": 1.5,
            "horizon": {"type": "session_end", "timezone": "localtime"},
        },
        kill_switch={"max_daily_loss": {"quote": 10, "timezone": "../../etc/passwd"}},
    )
    assert [f[0] for f in checks.check_timezones(profile)] == [
        ("schedule", 0, "timezone"),
        ("strategy", "horizon", "timezone"),
        ("kill_switch", "max_daily_loss", "timezone"),
    ]
    assert checks.valid_timezone("Europe/Berlin") and checks.valid_timezone("UTC")


@pytest.mark.parametrize("expr", ["0 8 * * 1-5", "*/15 * * * *", "30 17 1 1,6 *"])
def test_cron_valid(expr: str) -> None:
    assert checks.cron_error(expr) is None


@pytest.mark.parametrize("expr", ["", "x", "0 8 * *", "0 8 * * * *", "*/0 * * * *", "0 24 * * *"])
def test_cron_invalid(expr: str) -> None:
    assert checks.cron_error(expr)


def test_sim_balances_only_for_random_walk() -> None:
    assert checks.check_sim_balances(_profile(symbol="BTC/USDT"))[0][0] == ("venue", "balances")
    as2008 = {"type": "sim", "market": {"model": "as2008"}, "balances": {}}
    assert checks.check_sim_balances(_profile(venue=as2008, symbol="BTC/USDT")) == []


def test_paper_venue_checks_exchange_and_balances() -> None:
    paper = _profile(venue={"type": "paper", "exchange": "mexc"})
    assert checks.run_checks(paper) == []
    venue = paper.venue
    assert venue.type == "paper" and venue.queue_position == "back" and venue.fees is None
    [(path, message)] = checks.check_exchange(
        _profile(venue={"type": "paper", "exchange": "binance"})
    )
    assert path == ("venue", "exchange") and "mexc" in message
    btc = _profile(venue={"type": "paper", "exchange": "gate"}, symbol="BTC/USDT")
    assert checks.check_sim_balances(btc) == [
        (("venue", "balances"), "balances must include BTC (the assets of BTC/USDT)")
    ]


def test_symbol_assets_differ() -> None:
    assert checks.check_symbol(_profile(symbol="KAS/KAS"))[0][0] == ("symbol",)


def test_crashing_check_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(_: Profile) -> list[checks.Finding]:
        raise RuntimeError("no")

    monkeypatch.setitem(checks.CHECKS, "boom", boom)
    assert checks.run_checks(_profile()) == [((), "internal error in check boom: RuntimeError")]


def test_schema_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert schema_command() == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["title"] == "kasmm profile"
    assert "name" not in schema["required"] and "modes" in schema["required"]
    assert schema["additionalProperties"] is False


def test_committed_schema_file_is_up_to_date(capsys: pytest.CaptureFixture[str]) -> None:
    schema_command()
    expected = capsys.readouterr().out
    assert SCHEMA_FILE.read_text() == expected, (
        "regenerate with: .venv/bin/python -m kasmm schema > kasmm-profile.schema.json"
    )
    assert json.loads(expected) == profile_json_schema()


# --- client id prefixes across profiles -------------------------------------------------------


def _on(
    name: str,
    prefix: str | None,
    exchange: str = "gate",
    *,
    account: str | None = None,
    key: str = "${K}",
    sandbox: bool = False,
    enabled: bool = True,
) -> Profile:
    venue = {**_ccxt(exchange, sandbox), "account": account}
    venue["credentials"] = {"api_key": key, "secret": "${S}"}
    extra: dict[str, Any] = {"order_prefix": prefix} if prefix is not None else {}
    return _profile(name=name, venue=venue, enabled=enabled, **extra)


@pytest.mark.parametrize(
    ("profiles", "refused"),
    [
        # one account named twice, one API key reference twice, or both
        ([_on("a", "mm", account="main", key="${A}"), _on("b", "mm", account="main")], "ab"),
        ([_on("a", "mm"), _on("b", "mm")], "ab"),
        ([_on("a", "mm", account="x"), _on("b", "mm", account="y")], "ab"),  # same key
        # the delimiter makes a prefix that starts another one harmless
        ([_on("a", "mm"), _on("b", "mm1")], ""),
        # different accounts: different exchanges, testnet vs live, other keys and names
        ([_on("a", "mm", "gate"), _on("b", "mm", "mexc")], ""),
        ([_on("a", "mm", sandbox=True), _on("b", "mm")], ""),
        ([_on("a", "mm", key="${A}"), _on("b", "mm", key="${B}")], ""),
        ([_on("a", "mm", account="x", key="${A}"), _on("b", "mm", account="y", key="${B}")], ""),
        # a disabled profile places no orders
        ([_on("a", "mm"), _on("b", "mm", enabled=False)], ""),
        # simulated and paper venues are per profile
        ([_profile(name="a", order_prefix="mm"), _profile(name="b", order_prefix="mm")], ""),
        ([_on("a", "mm"), _profile(name="b", order_prefix="mm")], ""),
        # three on one account: all refused, the odd one out is fine
        ([_on("a", "mm"), _on("b", "mm"), _on("c", "mm"), _on("d", "nn")], "abc"),
    ],
)
def test_prefix_collisions(profiles: list[Profile], refused: str) -> None:
    found = checks.prefix_collisions(profiles)
    assert "".join(name for name, _ in found) == refused


def test_prefix_collision_messages_name_the_others_and_the_account() -> None:
    derived = _profile(name="a").client_id_prefix  # "k" + 5 hex digits of sha256("a")
    found = dict(
        checks.prefix_collisions(
            [_on("a", None, account="main"), _on("b", derived, account="main"), _on("c", derived)]
        )
    )
    assert found["a"] == (
        f"client order id prefix {derived!r} (derived from the name) is also used by profiles "
        "'b', 'c' on the same gate live account (API key ${K}): each would cancel the other's "
        "orders and book its fills; give each profile its own order_prefix"
    )
    assert found["b"].startswith(f"client order id prefix {derived!r} (set here) ")
    assert "profiles 'a', 'c'" in found["b"]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


GATE = """venue:
  type: ccxt
  exchange: gate
  credentials: {api_key: "${K}", secret: "${S}"}
  account: main
symbol: KAS/USDT
modes:
  aggressive: {spread_bps: 20, size: 1000}
  passive: {spread_bps: 40, size: 1000}
kill_switch: {max_drawdown: {pct: 5}, max_daily_loss: {quote: 50}}
"""


def test_validate_refuses_both_profiles_of_a_prefix_collision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression (issue 13.3): two profiles on one account with one prefix both ran, each
    cancelling the other's orders. Each now gets an issue at its own order_prefix (or name)."""
    from kasmm.commands.validate import validate_command
    from kasmm.config.loader import load_paths

    monkeypatch.setenv("K", "key")
    monkeypatch.setenv("S", "secret")
    one = _write(tmp_path / "one.yaml", GATE + "order_prefix: mm\n")
    two = _write(tmp_path / "two.yaml", "name: two\n" + GATE + "order_prefix: mm\n")
    _write(tmp_path / "three.yaml", GATE + "order_prefix: mm1\n")
    assert validate_command([tmp_path]) == 1
    lines = capsys.readouterr().out.splitlines()
    account = "on the same gate live account (API key ${K})"
    assert lines == [
        f"{one}:11:15: one: order_prefix: client order id prefix 'mm' (set here) is also used by "
        f"profile 'two' {account}: each would cancel the other's orders and book its fills; give "
        "each profile its own order_prefix",
        f"{two}:12:15: two: order_prefix: client order id prefix 'mm' (set here) is also used by "
        f"profile 'one' {account}: each would cancel the other's orders and book its fills; give "
        "each profile its own order_prefix",
    ]
    assert sorted(load_paths([tmp_path]).profiles) == ["three"]
    # Without order_prefix the issue points at the name the prefix derives from.
    two.write_text("name: two\n" + GATE)
    _write(tmp_path / "one.yaml", GATE + f"order_prefix: {_profile(name='two').client_id_prefix}\n")
    issues = load_paths([tmp_path]).issues
    assert [(i.path.name, i.line, i.col, i.field) for i in issues] == [
        ("one.yaml", 11, 15, "order_prefix"),
        ("two.yaml", 1, 1, "order_prefix"),
    ]
