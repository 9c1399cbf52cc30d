"""``_portfolios.yaml``: structure, checks and membership, each at file:line:col."""

from __future__ import annotations

import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from kasmm.config.loader import load_file, load_paths
from kasmm.config.portfolios import group_spec


def profile(name: str, symbol: str = "KAS/USDT") -> str:
    base, quote = symbol.split("/")
    return textwrap.dedent(
        f"""\
        name: {name}
        venue: {{type: sim, balances: {{{base}: 1000, {quote}: 1000}}}}
        symbol: {symbol}
        modes:
          passive: {{spread_bps: 20, size: 1000}}
        """
    )


def write(directory: Path, text: str, name: str = "_portfolios.yaml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def profiles(tmp_path: Path) -> Path:
    for name in ("mexc-kas", "gate-kas", "kucoin-kas"):
        (tmp_path / f"{name}.yaml").write_text(profile(name))
    (tmp_path / "btc.yaml").write_text(profile("btc", "BTC/USDT"))
    (tmp_path / "kas-usdc.yaml").write_text(profile("kas-usdc", "KAS/USDC"))
    return tmp_path


def test_valid_file_resolves_names_and_globs(profiles: Path) -> None:
    write(
        profiles,
        """\
        portfolios:
          kas:
            members: [mexc-kas, "*-kas", gate-kas]
            target: {base: 250000}
            min_share: 0.2
            kill_switch:
              max_drawdown: {quote: 500, pct: 5}
              max_daily_loss: {quote: 300, timezone: Europe/Berlin, action: pause, pause_s: 60}
              max_base_exposure: {base: 1000000, beyond_target: 300000}
        """,
    )
    load = load_paths([profiles], env={})
    assert load.issues == [] and not load.portfolios_invalid
    assert load.portfolios is not None
    (group,) = load.portfolios
    assert group.name == "kas"
    assert group.members == ("gate-kas", "kucoin-kas", "mexc-kas")
    assert (group.base, group.quote) == ("KAS", "USDT")
    spec = group_spec(group)
    assert spec.target_base == Decimal(250000) and spec.target_share is None
    assert spec.min_share == 0.2 and spec.max_share == 0.9
    limits = spec.limits
    assert limits.max_drawdown is not None and limits.max_drawdown.quote == Decimal(500)
    assert limits.max_daily_loss is not None and limits.max_daily_loss.action == "pause"
    assert limits.max_base_exposure is not None
    assert limits.max_base_exposure.beyond_target == Decimal(300000)
    # Not a profile file: load_file validates it alone and yields no profiles.
    assert load_file(profiles / "_portfolios.yaml", env={}) == ([], [])


def test_no_file_empty_file_and_default_target(profiles: Path) -> None:
    assert load_paths([profiles], env={}).portfolios is None
    write(profiles, "")
    assert load_paths([profiles], env={}).portfolios == ()
    write(profiles, "portfolios: {kas: {members: [mexc-kas]}}\n")
    load = load_paths([profiles], env={})
    assert load.portfolios is not None
    assert group_spec(load.portfolios[0]).target_share == 0.5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            """\
            portfolios:
              kas:
                members: [mexc-kas, btc]
            """,
            "3:25: portfolios.kas.members[1]: member 'btc' trades BTC/USDT: its base BTC is not "
            "the group's KAS (from 'mexc-kas')",
        ),
        (
            """\
            portfolios:
              kas:
                members: [mexc-kas, kas-usdc]
            """,
            "3:25: portfolios.kas.members[1]: member 'kas-usdc' trades KAS/USDC: its quote USDC "
            "is not the group's USDT (from 'mexc-kas'); a group values every member in one "
            "quote asset",
        ),
        (
            """\
            portfolios:
              a:
                members: [mexc-kas]
              b:
                members: ["m*"]
            """,
            "5:15: portfolios.b.members[0]: profile 'mexc-kas' is already in portfolio 'a' "
            "(a profile belongs to one portfolio at most)",
        ),
        (
            """\
            portfolios:
              kas:
                members: [mexc-kas, binance-kas]
            """,
            "3:25: portfolios.kas.members[1]: no profile named 'binance-kas'",
        ),
        (
            """\
            portfolios:
              kas:
                members: ["okx-*"]
            """,
            "3:15: portfolios.kas.members[0]: 'okx-*' matches no profile",
        ),
        (
            """\
            portfolios:
              kas:
                members: [mexc-kas]
                target: {share: 0.5, base: 1000}
            """,
            "4:5: portfolios.kas.target: set exactly one of share or base",
        ),
        (
            """\
            portfolios:
              kas:
                members: [mexc-kas]
                target: {share: 1.5}
            """,
            "4:21: portfolios.kas.target.share: Input should be less than or equal to 1",
        ),
        (
            """\
            portfolios:
              kas:
                members: [mexc-kas]
                kill_switch:
                  max_drawdown: {pct: 5, action: pause}
            """,
            "5:7: portfolios.kas.kill_switch.max_drawdown.pause_s: action 'pause' requires "
            "pause_s (seconds to pause)",
        ),
        (
            """\
            portfolios:
              kas:
                members: [mexc-kas]
                kill_switch:
                  max_drawdown: {pct: 5, action: reduce_only}
            """,
            "5:38: portfolios.kas.kill_switch.max_drawdown.action: Input should be 'halt' or "
            "'pause'",
        ),
        (
            """\
            portfolios:
              kas:
                members: [mexc-kas]
                kill_switch:
                  max_daily_loss: {quote: 10, timezone: Mars/Olympus}
            """,
            "5:45: portfolios.kas.kill_switch.max_daily_loss.timezone: unknown time zone "
            "'Mars/Olympus' (use an IANA name such as 'Europe/Berlin')",
        ),
        (
            """\
            portfolios:
              kas:
                members: [mexc-kas]
                kill_switch:
                  max_base_exposure: {}
            """,
            "5:7: portfolios.kas.kill_switch.max_base_exposure: set base or beyond_target "
            "(or both)",
        ),
        (
            """\
            portfolios:
              kas:
                members: [mexc-kas]
                taget: {share: 0.4}
            """,
            "4:5: portfolios.kas.taget: unknown key 'taget' (did you mean 'target'?); allowed: "
            "kill_switch, max_share, members, min_share, target",
        ),
        (
            """\
            portfolios:
              kas:
                members: []
            """,
            "3:5: portfolios.kas.members: Tuple should have at least 1 item after validation, "
            "not 0",
        ),
        ("- a list\n", "1:1: -: expected a mapping with a 'portfolios' key"),
    ],
)
def test_errors_name_file_field_and_reason(profiles: Path, text: str, expected: str) -> None:
    path = write(profiles, text)
    load = load_paths([profiles], env={})
    assert load.portfolios is None and load.portfolios_invalid
    assert [str(i) for i in load.issues] == [f"{path}:{expected}"]
    # The profiles themselves still load: a broken portfolio file stops no bot.
    assert "mexc-kas" in load.profiles


def test_member_whose_own_file_is_invalid_is_not_this_files_error(profiles: Path) -> None:
    (profiles / "gate-kas.yaml").write_text(profile("gate-kas") + "bogus: 1\n")
    write(profiles, "portfolios: {kas: {members: [gate-kas, mexc-kas]}}\n")
    load = load_paths([profiles], env={})
    assert [i.path.name for i in load.issues] == ["gate-kas.yaml"]
    assert load.portfolios is not None
    assert load.portfolios[0].members == ("mexc-kas",)


def test_a_second_portfolio_file_is_refused(profiles: Path) -> None:
    write(profiles, "portfolios: {kas: {members: [mexc-kas]}}\n")
    second = write(profiles, "portfolios: {}\n", "_portfolios.yml")
    load = load_paths([profiles], env={})
    assert load.portfolios is not None
    assert [str(i) for i in load.issues] == [
        f"{second}:1:1: -: a second portfolio file; only one is read"
    ]


def test_the_shipped_example_is_valid(tmp_path: Path) -> None:
    """``profiles/_portfolios.yaml.example``, copied in place, groups the live profiles."""
    repo = Path(__file__).resolve().parents[2] / "profiles"
    for path in repo.glob("*.yaml"):
        (tmp_path / path.name).write_text(path.read_text())
    (tmp_path / "_portfolios.yaml").write_text((repo / "_portfolios.yaml.example").read_text())
    load = load_paths([tmp_path], env={})
    assert [i for i in load.issues if i.path.name == "_portfolios.yaml"] == []
    assert load.portfolios is not None
    (group,) = load.portfolios
    assert group.members == ("bingx-kas-usdt", "gate-kas-usdt", "kucoin-kas-usdt", "mexc-kas-usdt")
    assert group_spec(group).limits.max_base_exposure is not None
