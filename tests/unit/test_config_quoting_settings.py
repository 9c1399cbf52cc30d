"""Issue 19's profile settings: per-side spreads, level size growth, ``pricing:``,
``after_fill:`` and ``inventory.rebalance``, from YAML to the core parameters.

Valid inputs are checked against every core field they flatten into; every refusal against its
exact ``file:line:col: profile: field: message``, through the loader (as ``kasmm validate``
prints it).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kasmm.backtest.overrides import apply_overrides
from kasmm.commands.schema import profile_json_schema
from kasmm.config import checks
from kasmm.config.hummingbot import HUMMINGBOT_KEYS
from kasmm.config.loader import load_file, load_paths
from kasmm.config.schema import SUPPORTED_EXCHANGES, Profile
from kasmm.config.to_core import (
    after_fill_params,
    price_band_params,
    quoting_params,
    rebalance_params,
)
from kasmm.config.warning_checks import warn_price_band
from kasmm.core.params import AfterFillParams, PriceBandParams, QuotingParams, RebalanceParams
from kasmm.supervisor.plan import DesiredProfile, RunningProfile, plan_reload
from kasmm.venues.ccxt.exchanges import FLAVOURS
from tests.support import PROFILES, demo_profile, make_profile

D = Decimal

SIDES: dict[str, Any] = {"spread_bps": None, "bid_spread_bps": 10, "ask_spread_bps": 30}


# --- a profile with per-side spreads survives a dump and a new validation --------------------


def test_a_mode_with_side_spreads_validates_again_from_its_dump() -> None:
    profile = make_profile(modes={"passive": SIDES})
    again = Profile.model_validate(profile.model_dump(mode="json"))
    assert again == profile and again.config_hash() == profile.config_hash()
    assert "spread_bps" not in profile.model_dump()["modes"]["passive"]


@pytest.mark.parametrize(
    ("overrides", "spread", "fraction"),
    [
        ({"modes.passive.bid_spread_bps": 20}, 50.0, 0.4),
        ({"modes.passive.ask_spread_bps": 10}, 20.0, 0.5),
        ({"modes.passive.size": 500}, 40.0, 0.25),
    ],
)
def test_overrides_of_a_side_spread_profile_re_derive_the_total(
    overrides: dict[str, Any], spread: float, fraction: float
) -> None:
    changed = apply_overrides(make_profile(modes={"passive": SIDES}), overrides)
    params = quoting_params(changed, mode="passive")
    assert (params.spread_bps, params.bid_fraction) == (spread, fraction)


# --- valid settings and the core values they flatten into ------------------------------------

#: The core fields of the new settings in QuotingParams, off (every default).
OFF: dict[str, Any] = {
    "spread_bps": 40.0,
    "bid_fraction": 0.5,
    "level_size_step": D(0),
    "level_size_step_pct": False,
    "add_fees": False,
    "join_depth": None,
    "join_min_spread_bps": None,
}


def _new_fields(params: QuotingParams) -> dict[str, Any]:
    return {name: getattr(params, name) for name in OFF}


@pytest.mark.parametrize(
    ("passive", "pricing", "expected"),
    [
        ({}, {}, {}),
        # per-side spreads: their sum is the spread, the bid's share its fraction
        (SIDES, {}, {"bid_fraction": 0.25}),
        ({**SIDES, "bid_spread_bps": 30}, {}, {"spread_bps": 60.0}),
        (
            {**SIDES, "bid_spread_bps": 0.1, "ask_spread_bps": 0.2},
            {},
            {"spread_bps": 0.3, "bid_fraction": 0.1 / 0.3},
        ),
        # level size growth: an amount (in size_unit) or a compounded percentage
        ({"level_size_step": 250}, {}, {"level_size_step": D(250)}),
        ({"level_size_step": "12.5"}, {}, {"level_size_step": D("12.5")}),
        ({"level_size_step": 0.1}, {}, {"level_size_step": D("0.1")}),
        ({"level_size_step": "10%"}, {}, {"level_size_step": D(10), "level_size_step_pct": True}),
        (
            {"level_size_step": " 2.50 % "},
            {},
            {"level_size_step": D("2.5"), "level_size_step_pct": True},
        ),
        (
            {"level_size_step": ".5%"},
            {},
            {"level_size_step": D("0.5"), "level_size_step_pct": True},
        ),
        ({"level_size_step": "100%"}, {}, {"level_size_step": D(100), "level_size_step_pct": True}),
        ({"level_size_step": "0%"}, {}, {}),  # no growth, however written
        # a percentage is unit-free: with quote sizes it compounds the notional
        (
            {"size": 100, "size_unit": "quote", "level_size_step": "10%"},
            {},
            {"level_size_step": D(10), "level_size_step_pct": True},
        ),
        (
            {"size": 100, "size_unit": "quote", "level_size_step": 25},
            {},
            {"level_size_step": D(25)},
        ),
        # pricing against the book
        ({}, {"add_fees": True}, {"add_fees": True}),
        ({}, {"join_depth": 5000}, {"join_depth": D(5000)}),
        (
            {},
            {"join_depth": "0.5", "join_min_spread_bps": 0},
            {"join_depth": D("0.5"), "join_min_spread_bps": 0.0},
        ),
        (
            {},
            {"join_depth": 1, "join_min_spread_bps": 25},
            {"join_depth": D(1), "join_min_spread_bps": 25.0},
        ),
    ],
)
def test_valid_settings_flatten_into_quoting_params(
    passive: dict[str, Any], pricing: dict[str, Any], expected: dict[str, Any]
) -> None:
    profile = make_profile(modes={"aggressive": None, "passive": passive}, pricing=pricing)
    assert checks.run_checks(profile) == []
    params = quoting_params(profile, mode="passive")
    assert _new_fields(params) == {**OFF, **expected}
    assert params.size == profile.modes.passive.size
    assert params.size_unit == profile.modes.passive.size_unit


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        (None, None),
        ({"floor": "0.05"}, PriceBandParams(floor=D("0.05"))),
        ({"ceiling": 0.2}, PriceBandParams(ceiling=D("0.2"))),
        ({"floor": 0.05, "ceiling": 0.2}, PriceBandParams(floor=D("0.05"), ceiling=D("0.2"))),
        ({"band_pct": 5}, PriceBandParams(band_pct=5.0, halflife_s=3600.0)),
        ({"band_pct": 2.5, "halflife_s": 600}, PriceBandParams(band_pct=2.5, halflife_s=600.0)),
    ],
)
def test_price_band(written: dict[str, Any] | None, expected: PriceBandParams | None) -> None:
    profile = make_profile(pricing={"price_band": written})
    assert checks.run_checks(profile) == []
    assert price_band_params(profile) == expected


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ({}, AfterFillParams()),
        ({"filled_order_delay_s": 15}, AfterFillParams(filled_order_delay_s=15.0)),
        ({"ping_pong": True}, AfterFillParams(ping_pong=True)),
        ({"hanging_orders": {"enabled": True}}, AfterFillParams(hanging=True)),
        (
            {"hanging_orders": {"enabled": True, "cancel_pct": 2.5}},
            AfterFillParams(hanging=True, hanging_cancel_pct=2.5),
        ),
        # a cancel_pct kept while hanging orders are off is carried, and does nothing
        ({"hanging_orders": {"cancel_pct": 3}}, AfterFillParams(hanging_cancel_pct=3.0)),
        (
            {"filled_order_delay_s": 0.5, "ping_pong": True, "hanging_orders": {"enabled": True}},
            AfterFillParams(filled_order_delay_s=0.5, ping_pong=True, hanging=True),
        ),
    ],
)
def test_after_fill(written: dict[str, Any], expected: AfterFillParams) -> None:
    profile = make_profile(after_fill=written, modes={"passive": {"levels": 3}})
    assert checks.run_checks(profile) == []
    assert after_fill_params(profile) == expected


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        (None, None),
        ({"max_size": 5000}, RebalanceParams(order="post_only", max_size=D(5000))),
        (
            {"order": "ioc", "max_size": "2500.5", "max_slippage_bps": 15, "min_interval_s": 30},
            RebalanceParams(
                order="ioc", max_size=D("2500.5"), max_slippage_bps=15.0, min_interval_s=30.0
            ),
        ),
        ({"order": "ioc", "max_size": 1}, RebalanceParams(order="ioc", max_size=D(1))),
    ],
)
def test_rebalance(written: dict[str, Any] | None, expected: RebalanceParams | None) -> None:
    profile = make_profile(inventory={"rebalance": written})
    assert checks.run_checks(profile) == []
    assert rebalance_params(profile) == expected


@pytest.mark.parametrize(
    "venue",
    [
        {"type": "paper", "exchange": "mexc"},
        {"type": "sim", "market": {"model": "replay", "path": "x.csv"}},
        *(
            {
                "type": "ccxt",
                "exchange": exchange,
                "credentials": {"api_key": "${K}", "secret": "${S}"},
            }
            for exchange in SUPPORTED_EXCHANGES
        ),
    ],
)
def test_an_ioc_rebalance_is_accepted_on_every_venue_with_a_book(venue: dict[str, Any]) -> None:
    profile = make_profile(
        venue=venue,
        inventory={"rebalance": {"order": "ioc", "max_size": 100}},
        kill_switch={"max_drawdown": None, "max_daily_loss": None},
    )
    assert checks.check_quoting_settings(profile) == []


def test_every_supported_exchange_maps_an_ioc() -> None:
    """What the rebalance rules rely on: no supported exchange lacks an IOC (the as2008 market
    is the one venue without a book, refused for any rebalance)."""
    assert set(SUPPORTED_EXCHANGES) <= set(FLAVOURS)
    assert all(FLAVOURS[exchange].ioc_as for exchange in SUPPORTED_EXCHANGES)


# --- modes and reloads --------------------------------------------------------------------------


def test_a_mode_switch_takes_the_modes_own_spread_split_and_growth_and_keeps_pricing() -> None:
    profile = make_profile(
        modes={
            "aggressive": {
                "spread_bps": None,
                "bid_spread_bps": 4,
                "ask_spread_bps": 12,
                "levels": 2,
                "level_size_step": 100,
            },
            "passive": {"spread_bps": 40, "levels": 3, "level_size_step": "10%"},
        },
        pricing={"add_fees": True, "join_depth": 800, "join_min_spread_bps": 12},
    )
    aggressive = quoting_params(profile, mode="aggressive")
    passive = quoting_params(profile, mode="passive")
    assert _new_fields(aggressive) == {
        **OFF,
        "spread_bps": 16.0,
        "bid_fraction": 0.25,
        "level_size_step": D(100),
        "add_fees": True,
        "join_depth": D(800),
        "join_min_spread_bps": 12.0,
    }
    assert _new_fields(passive) == {
        **_new_fields(aggressive),
        "spread_bps": 40.0,
        "bid_fraction": 0.5,
        "level_size_step": D(10),
        "level_size_step_pct": True,
    }
    assert (aggressive.levels, passive.levels) == (2, 3)


#: One change to each new setting, from the defaults of make_profile().
CHANGES: list[dict[str, Any]] = [
    {"modes": {"passive": SIDES}},
    {"modes": {"passive": {"level_size_step": 100}}},
    {"modes": {"passive": {"level_size_step": "5%"}}},
    {"pricing": {"add_fees": True}},
    {"pricing": {"join_depth": 100}},
    {"pricing": {"join_depth": 100, "join_min_spread_bps": 5}},
    {"pricing": {"price_band": {"floor": 0.05}}},
    {"pricing": {"price_band": {"ceiling": 0.5}}},
    {"pricing": {"price_band": {"band_pct": 5}}},
    {"pricing": {"price_band": {"band_pct": 5, "halflife_s": 60}}},
    {"after_fill": {"filled_order_delay_s": 10}},
    {"after_fill": {"ping_pong": True}},
    {"after_fill": {"hanging_orders": {"enabled": True}}},
    {"after_fill": {"hanging_orders": {"cancel_pct": 2}}},
    {"inventory": {"rebalance": {"max_size": 100}}},
    {"inventory": {"rebalance": {"max_size": 100, "order": "ioc"}}},
    {"inventory": {"rebalance": {"max_size": 100, "min_interval_s": 5}}},
]


@pytest.mark.parametrize("change", CHANGES)
def test_a_reload_restarts_a_profile_whose_new_setting_changed(change: dict[str, Any]) -> None:
    """The supervisor restarts a profile whose config hash changed (a new bot reads the new
    settings from the start); any change to a new setting changes the hash."""
    before, after = make_profile(), make_profile(**change)
    path = Path("p.yaml")
    plan = plan_reload(
        {"p": RunningProfile(before.config_hash(), path)},
        {"p": DesiredProfile(after.config_hash())},
    )
    assert plan.restart == ("p",) and plan.unchanged == ()


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ({"level_size_step": "10%"}, {"level_size_step": " 10.0 % "}),
        ({"level_size_step": 0}, {"level_size_step": "0%"}),
        ({"level_size_step": 0}, {}),
        ({"bid_spread_bps": 10, "spread_bps": None, "ask_spread_bps": 30}, {**SIDES}),
    ],
)
def test_spellings_of_one_setting_hash_alike_so_a_reload_leaves_the_bot_alone(
    one: dict[str, Any], other: dict[str, Any]
) -> None:
    assert (
        make_profile(modes={"passive": one}).config_hash()
        == make_profile(modes={"passive": other}).config_hash()
    )


def test_the_defaults_write_nothing_new_into_the_core_values() -> None:
    """A profile without the new blocks flattens to the same values as one that writes every
    default out (what keeps earlier results unchanged)."""
    written = make_profile(
        modes={"passive": {"level_size_step": 0}},
        pricing={"add_fees": False, "join_depth": None, "price_band": None},
        after_fill={
            "filled_order_delay_s": 0,
            "ping_pong": False,
            "hanging_orders": {"enabled": False, "cancel_pct": 1.0},
        },
        inventory={"rebalance": None},
    )
    bare = make_profile()
    assert written.config_hash() == bare.config_hash()
    assert quoting_params(written) == quoting_params(bare)
    assert after_fill_params(bare) == AfterFillParams()
    assert (price_band_params(bare), rebalance_params(bare)) == (None, None)


# --- refusals, located as `kasmm validate` prints them ------------------------------------------

REFUSED = Path(__file__).resolve().parent.parent / "invalid" / "quoting_settings"

# file -> (line, col, field, message): the whole message, exactly
REFUSALS: dict[str, tuple[int, int, str, str]] = {
    "add_fees_not_bool.yaml": (
        12,
        13,
        "pricing.add_fees",
        "Input should be a valid boolean, unable to interpret input",
    ),
    "after_fill_unknown_key.yaml": (
        12,
        3,
        "after_fill.hanging_orders_enabled",
        "unknown key 'hanging_orders_enabled' (did you mean 'hanging_orders'?); allowed: "
        "filled_order_delay_s, hanging_orders, ping_pong; Hummingbot's hanging_orders_enabled "
        "is after_fill.hanging_orders.enabled",
    ),
    "band_both_kinds.yaml": (
        14,
        15,
        "pricing.price_band.band_pct",
        "give floor/ceiling (an absolute band) or band_pct (a moving band), not both",
    ),
    "band_empty.yaml": (12, 3, "pricing.price_band", "give floor and/or ceiling, or band_pct"),
    "band_floor_above_ceiling.yaml": (
        13,
        12,
        "pricing.price_band.floor",
        "floor (0.1) must be below ceiling (0.06)",
    ),
    "band_floor_negative.yaml": (
        13,
        12,
        "pricing.price_band.floor",
        "Input should be greater than 0",
    ),
    "band_halflife_on_absolute.yaml": (
        14,
        17,
        "pricing.price_band.halflife_s",
        "halflife_s is the moving band's averaging (band_pct); an absolute band (floor/ceiling) "
        "does not move: remove it",
    ),
    "band_pct_over_100.yaml": (
        13,
        15,
        "pricing.price_band.band_pct",
        "Input should be less than or equal to 100",
    ),
    "filled_delay_negative.yaml": (
        12,
        25,
        "after_fill.filled_order_delay_s",
        "Input should be greater than or equal to 0",
    ),
    "hanging_cancel_pct_zero.yaml": (
        14,
        17,
        "after_fill.hanging_orders.cancel_pct",
        "Input should be greater than 0",
    ),
    "join_depth_negative.yaml": (
        12,
        15,
        "pricing.join_depth",
        "Input should be greater than or equal to 0",
    ),
    "join_min_spread_too_wide.yaml": (
        13,
        24,
        "pricing.join_min_spread_bps",
        "Input should be less than or equal to 10000",
    ),
    "join_min_spread_without_depth.yaml": (
        12,
        24,
        "pricing.join_min_spread_bps",
        "join_min_spread_bps bounds the join of the book, which is off: set join_depth or remove "
        "it",
    ),
    "join_on_as2008.yaml": (
        11,
        15,
        "pricing.join_depth",
        "the as2008 market publishes only its mid (a zero-width book): there is no book to join",
    ),
    "pricing_unknown_key.yaml": (
        12,
        3,
        "pricing.add_transaction_costs",
        "unknown key 'add_transaction_costs'; allowed: add_fees, join_depth, join_min_spread_bps, "
        "price_band; Hummingbot's add_transaction_costs is pricing.add_fees",
    ),
    "rebalance_interval_zero.yaml": (
        14,
        21,
        "inventory.rebalance.min_interval_s",
        "Input should be greater than 0",
    ),
    "rebalance_on_as2008.yaml": (
        11,
        3,
        "inventory.rebalance",
        "the as2008 market has no balances (cash and inventory are unbounded): there is no band "
        "to rebalance into",
    ),
    "rebalance_slippage_on_post_only.yaml": (
        14,
        23,
        "inventory.rebalance.max_slippage_bps",
        "max_slippage_bps caps an ioc rebalance; a post_only order rests at the touch and never "
        "slips: remove it, or set order: ioc",
    ),
    "rebalance_unknown_order.yaml": (
        13,
        12,
        "inventory.rebalance.order",
        "Input should be 'post_only' or 'ioc'",
    ),
    "rebalance_without_max_size.yaml": (
        12,
        3,
        "inventory.rebalance.max_size",
        "required field is missing",
    ),
    "side_and_total_spread.yaml": (
        8,
        3,
        "modes.passive",
        "give spread_bps or bid_spread_bps and ask_spread_bps, not both (spread_bps is their sum)",
    ),
    "side_spread_alone.yaml": (
        8,
        3,
        "modes.passive",
        "bid_spread_bps and ask_spread_bps go together: ask_spread_bps is missing",
    ),
    "side_spread_negative.yaml": (
        9,
        21,
        "modes.passive.bid_spread_bps",
        "Input should be greater than 0",
    ),
    "side_spreads_narrower_than_aggressive.yaml": (
        9,
        21,
        "modes.passive.bid_spread_bps",
        "passive spread (bid 4 + ask 6 = 10 bps) must be at least the aggressive spread (20 bps)",
    ),
    "side_spreads_too_wide.yaml": (
        8,
        3,
        "modes.passive",
        "bid_spread_bps + ask_spread_bps is 11000 bps; the total spread is at most 10000 bps",
    ),
    "side_spreads_with_avellaneda.yaml": (
        9,
        21,
        "modes.passive.bid_spread_bps",
        "bid_spread_bps/ask_spread_bps apply to the fixed_spread strategy; avellaneda_stoikov "
        "sets its own spread (use spread_bps or leave them out)",
    ),
    "size_step_nan.yaml": (
        12,
        22,
        "modes.passive.level_size_step",
        "Input should be a finite number",
    ),
    "size_step_negative.yaml": (
        12,
        22,
        "modes.passive.level_size_step",
        "must be at least 0: sizes only grow with depth (a negative step, which Hummingbot's "
        "order_level_amount allows, has no equivalent)",
    ),
    "size_step_negative_percent.yaml": (
        12,
        22,
        "modes.passive.level_size_step",
        "must be at least 0: sizes only grow with depth (a negative step, which Hummingbot's "
        "order_level_amount allows, has no equivalent)",
    ),
    "size_step_over_100_percent.yaml": (
        12,
        22,
        "modes.passive.level_size_step",
        "a percentage step is at most 100% (each level at most twice the one before); got 150%",
    ),
    "size_step_words.yaml": (
        12,
        22,
        "modes.passive.level_size_step",
        "expected an amount in size_unit (e.g. 250) or a percentage (e.g. '10%')",
    ),
}


def test_every_refusal_file_is_described() -> None:
    assert {p.name for p in REFUSED.glob("*.yaml")} == set(REFUSALS)


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_refusal(name: str) -> None:
    line, col, field, message = REFUSALS[name]
    path = REFUSED / name
    profiles, issues = load_file(path, env={})
    assert profiles == []
    assert [str(issue) for issue in issues] == [
        f"{path}:{line}:{col}: {path.stem}: {field}: {message}"
    ]


@pytest.mark.parametrize("key", sorted(HUMMINGBOT_KEYS))
def test_a_hummingbot_key_is_answered_with_its_kasmm_place(key: str, tmp_path: Path) -> None:
    path = tmp_path / "hb.yaml"
    path.write_text(
        "venue: {type: sim}\n"
        "symbol: KAS/USDT\n"
        "modes:\n"
        f"  passive: {{spread_bps: 40, size: 1000, {key}: 1}}\n"
    )
    _, [issue] = load_file(path, env={})
    where, note = HUMMINGBOT_KEYS[key]
    assert (issue.line, issue.field) == (4, f"modes.passive.{key}")
    assert issue.message.startswith(f"unknown key {key!r}")
    assert issue.message.endswith(
        f"; Hummingbot's {key} is {where}" + (f" ({note})" if note else "")
    )


@pytest.mark.parametrize("key", sorted(HUMMINGBOT_KEYS))
def test_each_hummingbot_equivalent_is_a_real_profile_field(key: str) -> None:
    schema = profile_json_schema()
    defs = schema["$defs"]
    node: dict[str, Any] = schema
    for part in HUMMINGBOT_KEYS[key][0].split("."):
        if part == "<mode>":
            node = defs["ModeConfig"]
            continue
        prop = node["properties"][part]
        refs = [prop.get("$ref"), *(alt.get("$ref") for alt in prop.get("anyOf", ()))]
        ref = next((r for r in refs if r), None)
        node = defs[ref.rsplit("/", 1)[-1]] if ref else prop
    assert node.get("description"), key  # a field (or block) the schema documents


# --- warnings: valid, probably not what was meant --------------------------------------------

JOIN = {"join_depth": 500}


@pytest.mark.parametrize(
    ("overrides", "warned"),
    [
        ({}, []),
        # the join's floor above a mode's spread hides that spread (20 and 40 bps here)
        ({"pricing": {**JOIN, "join_min_spread_bps": 20}}, []),
        (
            {"pricing": {**JOIN, "join_min_spread_bps": 30}},
            [(("pricing", "join_min_spread_bps"), "mode aggressive (20 bps): joined")],
        ),
        (
            {"pricing": {**JOIN, "join_min_spread_bps": 50}},
            [(("pricing", "join_min_spread_bps"), "aggressive (20 bps) and passive (40 bps)")],
        ),
        (
            {
                "pricing": {**JOIN, "join_min_spread_bps": 50},
                "strategy": {"type": "avellaneda_stoikov", "gamma": 0.1, "kappa": 10},
            },
            [],
        ),
        # an absolute band around the sim's start (s0 0.08): excluded, or a slipped digit
        ({"pricing": {"price_band": {"floor": 0.05, "ceiling": 0.2}}}, []),
        (
            {"pricing": {"price_band": {"floor": 0.1}}},
            [
                (
                    ("pricing", "price_band", "floor"),
                    "starts at 0.08, below the floor 0.1: only bids",
                )
            ],
        ),
        (
            {"pricing": {"price_band": {"ceiling": "0.07"}}},
            [(("pricing", "price_band", "ceiling"), "above the ceiling 0.07: only asks")],
        ),
        (
            {"pricing": {"price_band": {"floor": "0.008", "ceiling": "0.8"}}},
            [
                (("pricing", "price_band", "floor"), "0.008 is 10x or more below"),
                (("pricing", "price_band", "ceiling"), "0.8 is 10x or more above"),
            ],
        ),
        (
            {
                "venue": {"market": {"world": {"name": "w", "s0": 2}}},
                "pricing": {"price_band": {"floor": 1, "ceiling": 3}},
            },
            [],
        ),
        ({"pricing": {"price_band": {"band_pct": 1}}}, []),
        # add_fees with no fee to add; and it answers the spread-below-fees warning
        ({"pricing": {"add_fees": True}}, [(("pricing", "add_fees"), "maker fee")]),
        ({"pricing": {"add_fees": True}, "venue": {"fees": {"maker_bps": 2}}}, []),
        (
            {"venue": {"fees": {"maker_bps": 15}}},
            [(("modes", "aggressive", "spread_bps"), "twice the maker fee")],
        ),
        ({"pricing": {"add_fees": True}, "venue": {"fees": {"maker_bps": 15}}}, []),
        # a rebalance that can never send an order (lot 0.01, min notional 1 USDT at 0.08)
        ({"inventory": {"rebalance": {"max_size": "12.5"}}}, []),
        (
            {"inventory": {"rebalance": {"max_size": "0.005"}}},
            [(("inventory", "rebalance", "max_size"), "below the lot 0.01: floored")],
        ),
        (
            {"inventory": {"rebalance": {"max_size": 10}}},
            [(("inventory", "rebalance", "max_size"), "worth 0.80 at the starting price 0.08")],
        ),
        (
            {"inventory": {"min_share": 0, "max_share": 1, "rebalance": {"max_size": 100}}},
            [(("inventory", "rebalance"), "never leaves the band")],
        ),
        (
            {"inventory": {"min_share": 0, "rebalance": {"max_size": 100}}},
            [],
        ),
    ],
)
def test_warnings(overrides: dict[str, Any], warned: list[tuple[tuple[str, ...], str]]) -> None:
    profile = make_profile(**overrides)
    assert checks.run_checks(profile) == []
    findings = checks.run_warnings(profile)
    assert [path for path, _ in findings] == [path for path, _ in warned]
    for (_, message), (_, fragment) in zip(findings, warned, strict=True):
        assert fragment in message


def test_a_price_band_on_a_live_market_is_not_judged_offline() -> None:
    live = {
        "type": "ccxt",
        "exchange": "gate",
        "credentials": {"api_key": "${K}", "secret": "${S}"},
    }
    profile = make_profile(venue=live, pricing={"price_band": {"floor": 1000, "ceiling": 2000}})
    assert warn_price_band(profile) == []


def test_a_warning_of_a_new_setting_is_located_and_does_not_refuse(tmp_path: Path) -> None:
    path = tmp_path / "joined.yaml"
    path.write_text(
        "venue: {type: sim}\n"
        "symbol: KAS/USDT\n"
        "modes:\n"
        "  passive: {bid_spread_bps: 10, ask_spread_bps: 14, size: 1000}\n"
        "pricing:\n"
        "  join_depth: 2000\n"
        "  join_min_spread_bps: 30\n"
    )
    result = load_paths([path], env={})
    assert result.issues == [] and list(result.profiles) == ["joined"]
    assert [str(w) for w in result.warnings] == [
        f"{path}:7:24: joined: pricing.join_min_spread_bps: warning: join_min_spread_bps 30 is "
        "wider than the spread of mode passive (24 bps): joined quotes never come inside it, so "
        "that spread has no effect; to quote wider, widen the mode instead"
    ]


# --- properties -----------------------------------------------------------------------------

side_bps = st.decimals(min_value="0.01", max_value="5000", places=2).map(float)
step_amounts = st.decimals(min_value=0, max_value=10_000, places=4)
step_percents = st.decimals(min_value=0, max_value=100, places=3)


@st.composite
def step_spellings(draw: st.DrawFn) -> tuple[object, Decimal, bool]:
    """A way to write a level size step, with the (amount, percentage) it means."""
    if draw(st.booleans()):
        amount = draw(step_amounts)
        written = draw(st.sampled_from([amount, str(amount), f" {amount} "]))
        return written, amount, False
    pct = draw(step_percents)
    # places=3 always writes a decimal point, so "{}0%" only adds a trailing zero
    spaced = draw(st.sampled_from(["{}%", " {} %", "{}% ", "{}0%"]))
    return spaced.format(pct), pct, pct != 0


@settings(max_examples=200, deadline=None)
@given(bid=side_bps, ask=side_bps, step=step_spellings())
def test_side_spreads_and_steps_mean_what_they_say_and_survive_a_dump(
    bid: float, ask: float, step: tuple[object, Decimal, bool]
) -> None:
    written, amount, pct = step
    profile = make_profile(
        modes={
            "aggressive": None,
            "passive": {
                "spread_bps": None,
                "bid_spread_bps": bid,
                "ask_spread_bps": ask,
                "levels": 3,
                "level_size_step": written,
            },
        }
    )
    params = quoting_params(profile)
    # the total is the exact sum of the sides, and the bid's share splits it back
    assert D(repr(params.spread_bps)) == D(repr(bid)) + D(repr(ask))
    assert 0 < params.bid_fraction < 1
    assert params.spread_bps * params.bid_fraction == pytest.approx(bid, rel=1e-12)
    assert (params.level_size_step, params.level_size_step_pct) == (amount, pct)
    # a dump validates again into the same profile, hash included (no restart on reload)
    again = Profile.model_validate(profile.model_dump(mode="json"))
    assert again == profile and again.config_hash() == profile.config_hash()


# --- the example profiles ------------------------------------------------------------------------


def test_the_hummingbot_example_uses_the_settings_together_and_is_not_started() -> None:
    [loaded], issues = load_file(PROFILES / "kas-usdt-sim-hummingbot.yaml", env={})
    assert issues == []
    profile = loaded.profile
    assert not profile.enabled and profile.venue.type == "sim"
    params = quoting_params(profile)
    assert (params.spread_bps, params.bid_fraction) == (45.0, 25 / 45)
    assert (params.levels, params.level_size_step, params.level_size_step_pct) == (3, D(500), False)
    assert (params.add_fees, params.join_depth) == (True, D(2000))
    assert price_band_params(profile) == PriceBandParams(band_pct=5.0, halflife_s=3600.0)
    assert after_fill_params(profile) == AfterFillParams(
        filled_order_delay_s=60.0, hanging=True, hanging_cancel_pct=10.0
    )
    # every key the file sets is mapped from a Hummingbot key in its comment, or says why not
    text = (PROFILES / "kas-usdt-sim-hummingbot.yaml").read_text()
    for key in (
        "bid_spread",
        "ask_spread",
        "order_levels",
        "order_level_amount",
        "add_transaction_costs",
        "order_optimization_enabled",
        "filled_order_delay",
        "hanging_orders_enabled",
        "hanging_orders_cancel_pct",
        "moving_price_band",
    ):
        assert f"HB {key}" in text, key


def test_the_demo_profile_shows_the_new_settings_with_their_defaults_and_they_are_off() -> None:
    text = (PROFILES / "kas-usdt-sim.yaml").read_text()
    for shown in (
        "bid_spread_bps",
        "level_size_step",
        "add_fees",
        "join_depth",
        "join_min_spread_bps",
        "price_band",
        "filled_order_delay_s",
        "ping_pong",
        "hanging_orders",
        "rebalance",
    ):
        assert shown in text, shown
    [loaded], _ = load_file(PROFILES / "kas-usdt-sim.yaml", env={})
    demo = loaded.profile
    assert _new_fields(quoting_params(demo, mode="passive")) == {**OFF, "spread_bps": 14.0}
    assert after_fill_params(demo) == AfterFillParams()
    assert (price_band_params(demo), rebalance_params(demo)) == (None, None)


def test_a_hedged_profile_may_not_also_rebalance_by_order() -> None:
    rebalance = {"order": "ioc", "max_size": 5000}
    hedged = make_profile(
        demo_profile(),
        inventory={"rebalance": rebalance},
        hedge={"profile": "deep", "max_unhedged_base": {"base": 10000}},
    )
    assert checks.check_quoting_settings(hedged) == [
        (
            ("inventory", "rebalance"),
            "hedge: offsets every fill on deep, a rebalance order's too, so the two would undo "
            "each other: use one or the other",
        )
    ]
    plain = make_profile(demo_profile(), inventory={"rebalance": rebalance})
    assert checks.check_quoting_settings(plain) == []
