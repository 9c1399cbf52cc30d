"""Reference prices: the pure resolution (:mod:`kasmm.core.reference`) and the engine that
prices its quotes off it."""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kasmm.bot.engine import Engine
from kasmm.config.to_core import reference_params
from kasmm.core.reference import (
    DEVIATION,
    OWN_BOOK,
    STALE,
    Observed,
    ReferenceParams,
    SourceSpec,
    observe_book,
    resolve,
)
from kasmm.core.risk import TradingState
from kasmm.core.types import Book, BookLevel, MarketRules, Side
from tests.support import demo_profile, kill_switch_only

D = Decimal
REPO = Path(__file__).resolve().parents[2]
MEXC = "mexc:KAS/USDT"
GATE = "gate:KAS/USDT"
KUCOIN = "kucoin:KAS/USDT"


def seen(mid: str, depth: str = "100", at: float = 0.0) -> Observed:
    return Observed(D(mid), D(depth), at)


def params(*keys: str, **kw: object) -> ReferenceParams:
    return ReferenceParams(sources=tuple(SourceSpec(k) for k in keys), **kw)  # type: ignore[arg-type]


# --- the pure resolution ------------------------------------------------------------------------


def test_no_sources_is_the_own_mid() -> None:
    ref = resolve(ReferenceParams(), {}, D("0.08"), 0.0)
    assert (ref.price, ref.source, ref.problem) == (D("0.08"), OWN_BOOK, None)


def test_one_fresh_source_prices_and_names_itself() -> None:
    ref = resolve(params(MEXC), {MEXC: seen("0.0801")}, D("0.0800"), 1.0)
    assert (ref.price, ref.source, ref.problem) == (D("0.0801"), MEXC, None)
    assert ref.deviation_pct == pytest.approx(0.125)


def test_median_of_three_ignores_one_wild_venue() -> None:
    observed = {MEXC: seen("0.0800"), GATE: seen("0.0802"), KUCOIN: seen("0.0900")}
    ref = resolve(params(MEXC, GATE, KUCOIN, max_deviation_pct=None), observed, D("0.0801"), 0.0)
    assert ref.price == D("0.0802")
    assert ref.source == f"median({MEXC},{GATE},{KUCOIN})"


def test_median_of_two_is_their_mean() -> None:
    observed = {MEXC: seen("0.0800"), GATE: seen("0.0802")}
    assert resolve(params(MEXC, GATE), observed, D("0.0801"), 0.0).price == D("0.0801")


def test_depth_weighted_leans_to_the_deeper_venue() -> None:
    observed = {MEXC: seen("0.0800", depth="900"), GATE: seen("0.0810", depth="100")}
    ref = resolve(
        params(MEXC, GATE, method="depth_weighted", max_deviation_pct=None),
        observed,
        D("0.08"),
        0.0,
    )
    assert ref.price == D("0.0801")
    assert ref.source.startswith("depth_weighted(")


def test_a_stale_source_drops_out_and_the_rest_price() -> None:
    observed = {MEXC: seen("0.0800", at=0.0), GATE: seen("0.0802", at=9.0)}
    ref = resolve(params(MEXC, GATE, max_age_s=5.0), observed, D("0.0801"), 10.0)
    assert (ref.price, ref.source, ref.used) == (D("0.0802"), GATE, (GATE,))


def test_with_every_source_stale_it_pauses_or_falls_back_as_configured() -> None:
    observed = {MEXC: seen("0.0800", at=0.0)}
    paused = resolve(params(MEXC, max_age_s=5.0), observed, D("0.0801"), 5.5)
    assert (paused.price, paused.problem) == (None, STALE)
    fallback = resolve(params(MEXC, max_age_s=5.0, on_stale="own_mid"), observed, D("0.0801"), 5.5)
    assert (fallback.price, fallback.problem) == (D("0.0801"), None)
    assert fallback.source.startswith(OWN_BOOK)


def test_exactly_max_age_is_still_fresh() -> None:
    ref = resolve(params(MEXC, max_age_s=5.0), {MEXC: seen("0.08", at=0.0)}, D("0.08"), 5.0)
    assert ref.problem is None


def test_a_reference_too_far_from_the_own_mid_pauses() -> None:
    ref = resolve(params(MEXC, max_deviation_pct=2.0), {MEXC: seen("0.0900")}, D("0.0800"), 0.0)
    assert (ref.price, ref.problem) == (None, DEVIATION)
    assert ref.deviation_pct == pytest.approx(12.5)
    within = resolve(params(MEXC, max_deviation_pct=2.0), {MEXC: seen("0.0816")}, D("0.08"), 0.0)
    assert within.problem is None  # exactly 2 %: a maximum, not beyond it


def test_a_conversion_pair_multiplies_or_divides() -> None:
    usdc = "mexc:KAS/USDC"
    observed = {usdc: seen("0.0800"), "mexc:USDC/USDT": seen("1.0010")}
    times = ReferenceParams(sources=(SourceSpec(usdc, "mexc:USDC/USDT"),))
    assert resolve(times, observed, D("0.08"), 0.0).price == D("0.0800800")
    observed_inverse = {usdc: seen("0.0800"), "mexc:USDT/USDC": seen("0.5")}
    divide = ReferenceParams(sources=(SourceSpec(usdc, "mexc:USDT/USDC", invert=True),))
    ref = resolve(divide, observed_inverse, D("0.16"), 0.0)
    assert ref.price == D("0.16")
    assert ref.source == f"{usdc}/mexc:USDT/USDC"


def test_a_stale_conversion_drops_its_source() -> None:
    usdc = "mexc:KAS/USDC"
    observed = {usdc: seen("0.08", at=10.0), "mexc:USDC/USDT": seen("1", at=0.0)}
    spec = ReferenceParams(sources=(SourceSpec(usdc, "mexc:USDC/USDT"),), max_age_s=5.0)
    assert resolve(spec, observed, D("0.08"), 10.0).problem == STALE


def test_unusable_books_are_not_observed() -> None:
    def book(bid: str | None, ask: str | None) -> Book:
        return Book(
            bids=(BookLevel(D(bid), D(1)),) if bid else (),
            asks=(BookLevel(D(ask), D(1)),) if ask else (),
            ts=0.0,
        )

    assert observe_book(book("1", None), 0.0) is None
    assert observe_book(book("2", "1"), 0.0) is None  # crossed
    assert observe_book(book("1", "1"), 0.0) is None  # locked
    assert observe_book(book("1", "3"), 7.0) == Observed(D(2), D(2), 7.0)


@given(st.lists(st.decimals(min_value=D("0.01"), max_value=D(1), places=4), min_size=1, max_size=7))
def test_the_median_is_within_the_sources(mids: list[Decimal]) -> None:
    keys = [f"x{i}:KAS/USDT" for i in range(len(mids))]
    observed = {k: seen(str(m)) for k, m in zip(keys, mids, strict=True)}
    ref = resolve(params(*keys, max_deviation_pct=None), observed, D("0.5"), 0.0)
    assert ref.price is not None and min(mids) <= ref.price <= max(mids)


# --- the engine --------------------------------------------------------------------------------

RULES = MarketRules(symbol="KAS/USDT", base="KAS", quote="USDT", tick=D("0.000001"), lot=D("0.01"))


def book(bid: str, ask: str, size: str = "5000") -> Book:
    return Book(bids=(BookLevel(D(bid), D(size)),), asks=(BookLevel(D(ask), D(size)),), ts=0.0)


def referencing_engine(**reference: object) -> Engine:
    profile = demo_profile(
        reference={"sources": [{"exchange": "mexc", "symbol": "KAS/USDT"}], **reference},
        kill_switch=kill_switch_only(),
    )
    e = Engine(profile, venue_name="sim", run_tag="t0000000")
    e.connected(RULES)
    e.account.inventory.base, e.account.inventory.quote = D(50_000), D(4_000)
    return e


def centre(e: Engine) -> Decimal:
    quotes = e.last_decision.quotes  # type: ignore[union-attr]
    return (quotes.bids[0].price + quotes.asks[0].price) / 2


def test_the_profile_block_becomes_the_core_params() -> None:
    profile = demo_profile(
        reference={
            "sources": [
                {"exchange": "mexc", "symbol": "KAS/USDT"},
                {
                    "exchange": "gate",
                    "symbol": "KAS/USDC",
                    "via": {"exchange": "gate", "symbol": "USDC/USDT"},
                },
            ],
            "method": "depth_weighted",
            "max_age_s": 3,
        }
    )
    p = reference_params(profile)
    assert p.sources == (SourceSpec(MEXC), SourceSpec("gate:KAS/USDC", "gate:USDC/USDT"))
    assert (p.method, p.max_age_s, p.keys) == (
        "depth_weighted",
        3.0,
        (MEXC, "gate:KAS/USDC", "gate:USDC/USDT"),
    )


def test_quotes_follow_the_reference_before_the_own_book_moves() -> None:
    e = referencing_engine(max_deviation_pct=5)
    e.on_book(book("0.079900", "0.080100"), 0.0)
    assert e.on_reference(MEXC, book("0.080300", "0.080500"), 0.0)
    decision, actions = e.decide(0.1, 0.1)
    assert decision.price_source == MEXC
    assert decision.reference_mid == D("0.080400")
    assert decision.mid == D("0.080000")  # the own mid is still what risk and equity read
    assert actions
    # Centred on the reference, not the own mid; and the own book still bounds it: the bid
    # stays below the own best ask (post-only), however far the reference moved.
    assert centre(e) > D("0.0801")
    quotes = decision.quotes
    assert quotes.bids[0].price < D("0.080100")
    assert quotes.asks[0].price > D("0.079900")


def test_without_a_reference_book_yet_it_pauses_and_says_why() -> None:
    e = referencing_engine()
    e.on_book(book("0.079900", "0.080100"), 0.0)
    decision, actions = e.decide(0.1, 0.1)
    assert decision.price_source == "none"
    assert e.risk.trading_state(0.1) is TradingState.PAUSED
    assert e.risk.pause_trip is not None and e.risk.pause_trip.rule == "reference"
    assert e.risk.pause_trip.detail == STALE
    assert actions == ()


def test_a_wild_reference_pauses_and_a_sane_one_resumes_after_the_pause() -> None:
    e = referencing_engine(max_deviation_pct=2, pause_s=5)
    e.on_book(book("0.079900", "0.080100"), 0.0)
    e.on_reference(MEXC, book("0.089900", "0.090100"), 0.0)
    e.decide(0.1, 0.1)
    trip = e.risk.pause_trip
    assert trip is not None and (trip.rule, trip.detail) == ("reference", DEVIATION)
    assert trip.value == pytest.approx(12.5) and trip.limit == 2
    assert e.risk.paused_until == pytest.approx(5.1)
    e.on_reference(MEXC, book("0.080000", "0.080200"), 6.0)
    _, actions = e.decide(6.0, 6.0)
    assert e.risk.trading_state(6.0) is TradingState.ACTIVE
    assert actions


def test_a_reference_that_goes_stale_pauses_quoting() -> None:
    e = referencing_engine(max_age_s=2)
    e.on_book(book("0.079900", "0.080100"), 0.0)
    e.on_reference(MEXC, book("0.080000", "0.080200"), 0.0)
    e.decide(1.0, 1.0)
    assert e.risk.trading_state(1.0) is TradingState.ACTIVE
    e.on_book(book("0.079900", "0.080100"), 3.0)
    e.decide(3.0, 3.0)
    assert e.risk.trading_state(3.0) is TradingState.PAUSED
    trip = e.risk.pause_trip
    assert trip is not None and trip.detail == STALE and trip.value == pytest.approx(3.0)


def test_falling_back_to_the_own_mid_keeps_quoting() -> None:
    e = referencing_engine(on_stale="own_mid")
    e.on_book(book("0.079900", "0.080100"), 0.0)
    decision, actions = e.decide(0.1, 0.1)
    assert e.risk.trading_state(0.1) is TradingState.ACTIVE
    assert decision.price_source.startswith(OWN_BOOK) and actions
    assert centre(e) == D("0.080000")


def test_books_of_other_markets_are_ignored() -> None:
    e = referencing_engine()
    assert not e.on_reference(GATE, book("0.08", "0.0801"), 0.0)
    assert e.reference_ages(0.0) == {MEXC: None}


def test_the_view_shows_the_source_and_its_age() -> None:
    from kasmm.bot.stats import BotState
    from kasmm.bot.view import build_view

    e = referencing_engine()
    e.on_book(book("0.079900", "0.080100"), 0.0)
    e.on_reference(MEXC, book("0.080000", "0.080200"), 1.0)
    e.decide(1.5, 1.5)
    view = build_view(e, BotState.QUOTING, 2.0, 0)
    assert view.reference is not None
    assert (view.reference.source, view.reference.price) == (MEXC, D("0.080100"))
    assert view.reference.ages_s == ((MEXC, 1.0),)
    assert view.decision is not None and view.decision.price_source == MEXC


def test_group_skew_leans_a_member_that_is_short_on_its_own() -> None:
    from kasmm.core.skew import GroupSkew

    e = Engine(demo_profile(kill_switch=kill_switch_only()), venue_name="sim", run_tag="t0")
    e.connected(RULES)
    # Short on its own (25 % of its value in base against a 50 % target)...
    e.account.inventory.base, e.account.inventory.quote = D(15_000), D(3_600)
    e.on_book(book("0.079900", "0.080100"), 0.0)
    own, _ = e.decide(0.1, 0.1)
    assert own.skew_bps > 0  # leans to buy
    # ...but its portfolio is long overall: it leans to sell with the group.
    e.set_group(GroupSkew(deviation=0.8, excess_base=D(100_000)))
    grouped, _ = e.decide(0.2, 0.2)
    assert grouped.skew_bps < 0
    assert not math.isnan(grouped.skew_bps)
    assert grouped.quotes.asks[0].price < own.quotes.asks[0].price
    assert grouped.quotes.bids[0].price < own.quotes.bids[0].price
    assert grouped.quotes.bids[0].side is Side.BUY


def test_an_external_pause_holds_while_set_and_a_halt_is_taken_once() -> None:
    from kasmm.core.risk import Trip

    e = referencing_engine(on_stale="own_mid")
    e.on_book(book("0.079900", "0.080100"), 0.0)
    e.external_trip(Trip("portfolio_max_base_exposure", "pause", 2.0, 1.0, 0.0, "", 1.0), "p")
    e.decide(0.0, 0.0)
    assert e.risk.trading_state(0.5) is TradingState.PAUSED
    e.decide(1.5, 1.5)  # the pause ended, the source still sets it: paused again
    assert e.risk.trading_state(1.5) is TradingState.PAUSED
    e.external_trip(None, "p")
    e.decide(3.0, 3.0)
    assert e.risk.trading_state(3.0) is TradingState.ACTIVE
    e.external_trip(Trip("portfolio_max_drawdown", "halt", 9.0, 5.0, 3.0), "p")
    e.decide(3.1, 3.1)
    assert e.risk.trading_state(3.1) is TradingState.HALTED
    e.reset(4.0)
    e.decide(4.1, 4.1)
    assert e.risk.trading_state(4.1) is TradingState.ACTIVE  # not undone by the same trip


# --- the profile block's checks -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "field", "says"),
    [
        ({"exchange": "sim", "symbol": "KAS/USDT"}, (), "this profile's own market"),
        ({"exchange": "mexc", "symbol": "BTC/USDT"}, ("symbol",), "prices BTC"),
        ({"exchange": "mexc", "symbol": "KAS/USDC"}, ("symbol",), "add `via`"),
        (
            {
                "exchange": "mexc",
                "symbol": "KAS/USDC",
                "via": {"exchange": "mexc", "symbol": "BTC/USDT"},
            },
            ("via", "symbol"),
            "does not convert USDC into USDT",
        ),
        (
            {
                "exchange": "mexc",
                "symbol": "KAS/USDT",
                "via": {"exchange": "mexc", "symbol": "USDC/USDT"},
            },
            ("via",),
            "already quoted in USDT",
        ),
    ],
)
def test_a_source_that_cannot_price_the_profile_is_refused(
    source: dict[str, object], field: tuple[str, ...], says: str
) -> None:
    from kasmm.config.checks import check_reference

    [(path, message)] = check_reference(demo_profile(reference={"sources": [source]}))
    assert path == ("reference", "sources", 0, *field)
    assert says in message


def test_the_same_source_twice_is_refused() -> None:
    from kasmm.config.checks import check_reference

    twice = [{"exchange": "mexc", "symbol": "KAS/USDT"}] * 2
    [(path, message)] = check_reference(demo_profile(reference={"sources": twice}))
    assert path == ("reference", "sources", 1) and "twice" in message


def test_a_bad_reference_names_the_file_line_and_field(tmp_path: Path) -> None:
    from kasmm.config.loader import load_paths

    text = (REPO / "profiles" / "kas-usdt-sim.yaml").read_text()
    path = tmp_path / "thin.yaml"
    path.write_text(
        text
        + "reference:\n  sources:\n    - exchange: mexc\n      symbol: KAS/USDC\n"
        + "  max_age_s: -1\n"
    )
    issues = load_paths([tmp_path]).issues
    assert {i.path for i in issues} == {path}
    fields = sorted(i.field for i in issues)
    assert fields == ["reference.max_age_s"], [str(i) for i in issues]
    path.write_text(text + "reference:\n  sources:\n    - {exchange: mexc, symbol: KAS/USDC}\n")
    [issue] = load_paths([tmp_path]).issues
    assert issue.field == "reference.sources[0].symbol" and "add `via`" in issue.message
    assert issue.line == len(text.splitlines()) + 3


# --- a world in a backtest --------------------------------------------------------------------


def test_each_backtest_path_draws_its_own_latent_price() -> None:
    """Regression: a world venue built without the path's registry replayed one latent path
    on every path (the runs differed only by each venue's own noise)."""
    from dataclasses import replace

    from kasmm.backtest.engine import PathSpec, build_path
    from kasmm.config.loader import load_file

    [loaded], issues = load_file(REPO / "profiles" / "sim-deep-kas-usdt.yaml")
    assert not issues
    spec = PathSpec(
        run=0,
        index=0,
        seed=1,
        profile=loaded.profile,
        market="random_walk",
        data=None,
        queue_position="back",
        start=0.0,
        end=60.0,
        session_end=60.0,
        unlimited=True,
        log_level=40,
    )
    latent = []
    for index in (0, 1):
        venue = build_path(replace(spec, index=index)).sim
        world = venue.world
        assert world is not None
        latent.append([world.latent.at(t) for t in (10.0, 30.0, 60.0)])
    assert latent[0] != latent[1]
