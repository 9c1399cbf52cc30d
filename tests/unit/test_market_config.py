"""Market data in the configuration and the venue stack: a reference to a simulated market no
profile trades is refused on its field; build_stack wires the hub into each kind of venue."""

from __future__ import annotations

from pathlib import Path

import pytest

from kasmm.clock import VirtualClock
from kasmm.config.loader import load_paths
from kasmm.config.schema import Profile
from kasmm.limiter import TokenBucket
from kasmm.market import MarketHub
from kasmm.market.feeds import PublicFeeds
from kasmm.market.keys import reference_keys
from kasmm.market.paper import HubPublicFeed
from kasmm.market.publish import PublishingVenue
from kasmm.market.references import ReferenceVenue
from kasmm.venues.base import Venue
from kasmm.venues.ccxt import CcxtVenue
from kasmm.venues.factory import build_stack
from kasmm.venues.guard import TimeoutVenue
from kasmm.venues.limited import RateLimitedVenue
from kasmm.venues.paper import PaperVenue
from kasmm.venues.paper_feed import CcxtPublicFeed

THIN = """\
name: thin
symbol: KAS/USDT
venue: {type: sim}
modes: {passive: {spread_bps: 40, size: 1000}}
reference:
  sources:
    - exchange: sim
      symbol: KAS/USDC
      via: {exchange: gate, symbol: USDC/USDT}
"""
DEEP = """\
name: deep
symbol: KAS/USDC
venue: {type: sim, balances: {KAS: "50000", USDC: "4000"}}
modes: {passive: {spread_bps: 40, size: 1000}}
"""


def test_a_reference_to_a_simulated_market_nobody_trades_names_the_file_and_field(
    tmp_path: Path,
) -> None:
    (tmp_path / "thin.yaml").write_text(THIN)
    load = load_paths([tmp_path])
    assert "thin" not in load.profiles
    [issue] = load.issues
    assert (issue.path, issue.line, issue.field) == (
        tmp_path / "thin.yaml",
        7,
        "reference.sources[0].exchange",
    )
    assert "sim:KAS/USDC is a simulated market that no enabled profile here trades" in str(issue)


def test_a_reference_to_a_simulated_market_another_profile_trades_loads(tmp_path: Path) -> None:
    (tmp_path / "thin.yaml").write_text(THIN)
    (tmp_path / "deep.yaml").write_text(DEEP)
    load = load_paths([tmp_path])
    assert load.issues == [] and set(load.profiles) == {"thin", "deep"}
    assert reference_keys(load.profiles["thin"].profile) == ("sim:KAS/USDC", "gate:USDC/USDT")
    # Disabled, the trading profile publishes nothing: the reference is refused again.
    (tmp_path / "deep.yaml").write_text(DEEP + "enabled: false\n")
    assert [i.field for i in load_paths([tmp_path]).issues] == ["reference.sources[0].exchange"]


def test_a_reference_to_a_simulated_market_two_profiles_trade_is_ambiguous(tmp_path: Path) -> None:
    (tmp_path / "thin.yaml").write_text(THIN)
    (tmp_path / "deep.yaml").write_text(DEEP)
    (tmp_path / "deep2.yaml").write_text(DEEP.replace("name: deep", "name: deep2"))
    load = load_paths([tmp_path])
    assert set(load.profiles) == {"deep", "deep2"}
    [issue] = load.issues
    assert issue.field == "reference.sources[0].exchange"
    assert "sim:KAS/USDC is traded by 2 simulated venues ('deep', 'deep2')" in issue.message


def profile(venue: dict[str, object], **extra: object) -> Profile:
    modes = {"passive": {"spread_bps": 40, "size": 1000}}
    return Profile.model_validate(
        {"name": "p", "symbol": "KAS/USDT", "venue": venue, "modes": modes} | extra
    )


def stack_of(p: Profile, hub: MarketHub | None, references: tuple[str, ...] = ()) -> Venue:
    clock = VirtualClock()
    return build_stack(
        p, clock, limiter=TokenBucket(10, 10, clock), hub=hub, references=references
    ).venue


def test_without_a_hub_the_stack_is_unchanged() -> None:
    venue = stack_of(profile({"type": "sim"}), None)
    assert isinstance(venue, RateLimitedVenue) and isinstance(venue.inner, TimeoutVenue)
    with pytest.raises(ValueError, match="market hub"):
        stack_of(profile({"type": "sim"}), None, ("gate:KAS/USDT",))


def test_a_simulated_venue_publishes_and_a_referencing_one_reads_references() -> None:
    hub = MarketHub(VirtualClock(), feed_factory=PublicFeeds(VirtualClock()))
    venue = stack_of(profile({"type": "sim"}), hub, ("gate:KAS/USDT",))
    assert isinstance(venue, ReferenceVenue) and venue.keys == ("gate:KAS/USDT",)
    publishing = venue.inner
    assert isinstance(publishing, PublishingVenue) and publishing.key == "sim:KAS/USDT"
    assert isinstance(publishing.inner, RateLimitedVenue)


def test_live_and_paper_venues_take_their_market_data_from_the_hub() -> None:
    hub = MarketHub(VirtualClock(), feed_factory=PublicFeeds(VirtualClock()))
    paper = stack_of(profile({"type": "paper", "exchange": "mexc"}), hub)
    inner = paper.inner.inner  # type: ignore[attr-defined]
    assert isinstance(inner, PaperVenue) and isinstance(inner._feed, HubPublicFeed)
    assert inner._feed.key == "mexc:KAS/USDT"
    live = profile(
        {
            "type": "ccxt",
            "exchange": "gate",
            "credentials": {"api_key": "${K}", "secret": "${S}"},
        }
    )
    with pytest.MonkeyPatch.context() as env:  # credentials resolve from the environment
        env.setenv("K", "key")
        env.setenv("S", "secret")
        venue = stack_of(live, hub)
    assert isinstance(venue, CcxtVenue) and venue.book_feed is not None
    assert venue.book_feed.args == ("gate:KAS/USDT",)  # type: ignore[attr-defined]
    assert hub.is_fed("gate:KAS/USDT") and not hub.is_fed("sim:KAS/USDT")


@pytest.mark.anyio
async def test_every_feed_of_one_exchange_draws_on_one_public_budget() -> None:
    feeds = PublicFeeds(VirtualClock())
    usdt, usdc = feeds("gate:KAS/USDT"), feeds("gate:KAS/USDC")
    other = feeds("mexc:KAS/USDT")
    assert feeds("sim:KAS/USDT") is None  # published by a venue, no feed
    bucket = feeds.bucket("gate")
    assert set(feeds.buckets) == {"gate", "mexc"}
    before = bucket.tokens
    for feed in (usdt, usdc):  # ccxt's per-endpoint cost goes to the exchange's bucket
        await feed.exchange.throttle(3)  # type: ignore[union-attr]
    assert bucket.tokens == pytest.approx(before - 6)
    assert feeds.bucket("mexc").tokens == feeds.bucket("mexc").capacity
    for feed in (usdt, usdc, other):
        await feed.close()  # type: ignore[union-attr]


def test_an_exchanges_feeds_use_the_first_profiles_urls_at_the_fastest_pace() -> None:
    feeds = PublicFeeds(VirtualClock(), poll_interval_s=1.0)
    creds = {"api_key": "${K}", "secret": "${S}"}
    feeds.note_endpoints(
        profile(
            {
                "type": "ccxt",
                "exchange": "gate",
                "credentials": creds,
                "rest_url": "http://127.0.0.1:1",
                "book_poll_s": 0.5,
                "feed_stall_s": 8,
            }
        )
    )
    feeds.note_endpoints(
        profile({"type": "paper", "exchange": "gate", "poll_interval_s": 0.3}, name="q")
    )
    feeds.note_endpoints(profile({"type": "sim"}))  # no public data: ignored
    feed = feeds("gate:KAS/USDT")
    assert isinstance(feed, CcxtPublicFeed)
    assert feed._poll_interval_s == 0.3 and feed._stall_s == 8
    assert feed.exchange.urls["api"]["public"]["spot"].startswith("http://127.0.0.1:1")
    feeds.forget_endpoints()
    fresh = feeds("gate:KAS/USDC")
    assert isinstance(fresh, CcxtPublicFeed) and fresh._poll_interval_s == 1.0
