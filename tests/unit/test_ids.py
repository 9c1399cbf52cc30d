"""Client order ids: unique, ``prefix_`` + tag + sequence, exact ownership, short enough."""

from __future__ import annotations

import random
import re
from decimal import Decimal

import pytest

from kasmm.clock import VirtualClock
from kasmm.config.schema import SimVenueConfig
from kasmm.core.ids import (
    DELIMITER,
    MAX_CLIENT_ID_LEN,
    RUN_TAG_LEN,
    ClientIdFactory,
    base36,
    owned_prefix,
)
from kasmm.core.types import OrderRequest, Side
from kasmm.venues.sim import SimVenue

ALNUM_LOWER = re.compile(r"[a-z0-9]+")
#: What every exchange kasmm supports accepts in a client id (BingX: letters, digits and "_").
ID_CHARS = re.compile(r"[a-z0-9_]+")
GATE_MAX_TEXT_LEN = 28  # Gate prepends "t-" to the client id and allows 28 chars in total


# --- base36 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, "0"),
        (1, "1"),
        (9, "9"),
        (10, "a"),
        (35, "z"),
        (36, "10"),
        (37, "11"),
        (71, "1z"),
        (1295, "zz"),
        (1296, "100"),
        (36**5 - 1, "zzzzz"),
        (36**5, "100000"),
        (123456789, "21i3v9"),
    ],
)
def test_base36_table(n: int, expected: str) -> None:
    assert base36(n) == expected
    assert int(expected, 36) == n


def test_base36_round_trips() -> None:
    for n in [*range(0, 5000), *range(36**4 - 50, 36**4 + 50), 2**63, 10**30]:
        s = base36(n)
        assert ALNUM_LOWER.fullmatch(s)
        assert int(s, 36) == n
        assert s == "0" or not s.startswith("0")


@pytest.mark.parametrize("n", [-1, -36, -(10**12)])
def test_base36_rejects_negative(n: int) -> None:
    with pytest.raises(ValueError, match="negative"):
        base36(n)


# --- run tags --------------------------------------------------------------------------------


def test_run_tags_are_random_fixed_length_and_unique() -> None:
    tags = [ClientIdFactory.new_run_tag() for _ in range(2000)]
    assert len(set(tags)) == len(tags)
    for tag in tags:
        assert len(tag) == RUN_TAG_LEN
        assert ALNUM_LOWER.fullmatch(tag)


def test_seeded_run_tags_are_reproducible() -> None:
    """A backtest passes a seeded generator: its ids are a function of the seed."""
    first = ClientIdFactory.new_run_tag(random.Random(7))
    assert ClientIdFactory.new_run_tag(random.Random(7)) == first
    assert ClientIdFactory.new_run_tag(random.Random(8)) != first
    a, b = ClientIdFactory("ab", rng=random.Random(3)), ClientIdFactory("ab", rng=random.Random(3))
    assert [a.next() for _ in range(3)] == [b.next() for _ in range(3)]


def test_restarts_at_the_same_clock_reading_get_distinct_ids() -> None:
    """Regression: the tag came from the wall clock, so a clock stepped back (or the tag's 70-day
    wrap) gave a new run the ids of an old one. Now every run draws its own tag."""
    runs = [ClientIdFactory("kab12") for _ in range(200)]
    ids = {factory.next() for factory in runs for _ in range(20)}
    assert len(ids) == 200 * 20


@pytest.mark.parametrize(
    ("epoch_s", "expected"),
    [(0.0, "00000"), (0.35, "00003"), (36**5, "00000"), ((36**5 - 1) / 10, "zzzzz")],
)
def test_deprecated_clock_run_tag_still_works(epoch_s: float, expected: str) -> None:
    """Kept until every caller uses new_run_tag; its tags still make valid ids."""
    tag = ClientIdFactory.run_tag_for(epoch_s)
    assert tag == expected
    assert ClientIdFactory("ab", tag).next() == f"ab_{expected}1"


# --- factory ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "run_tag", "expected"),
    [
        ("ab", "00000000", ["ab_000000001", "ab_000000002", "ab_000000003"]),
        ("k1f2e3", "zz9aa0b1", ["k1f2e3_zz9aa0b11", "k1f2e3_zz9aa0b12", "k1f2e3_zz9aa0b13"]),
    ],
)
def test_ids_are_prefix_delimiter_run_tag_sequence(
    prefix: str, run_tag: str, expected: list[str]
) -> None:
    factory = ClientIdFactory(prefix, run_tag)
    assert [factory.next() for _ in expected] == expected
    assert factory.prefix == prefix + DELIMITER == owned_prefix(prefix)
    assert factory.profile_prefix == prefix
    assert factory.run_tag == run_tag


def test_sequence_counts_in_base36() -> None:
    factory = ClientIdFactory("ab", "00000000")
    ids = [factory.next() for _ in range(37)]
    assert ids[8] == "ab_000000009"
    assert ids[9] == "ab_00000000a"
    assert ids[34] == "ab_00000000z"
    assert ids[35] == "ab_0000000010"
    assert ids[36] == "ab_0000000011"


@pytest.mark.parametrize("prefix", ["ab", "k3f9a1", "abcdefgh", "00", "zz99zz99"])
def test_ids_unique_prefixed_and_short(prefix: str) -> None:
    factory = ClientIdFactory(prefix)
    ids = [factory.next() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    for cid in ids:
        assert ID_CHARS.fullmatch(cid)
        assert cid.startswith(prefix + "_")
        assert cid.count("_") == 1
        assert len(cid) <= MAX_CLIENT_ID_LEN
        assert factory.is_own(cid)
        assert not factory.is_legacy(cid)


@pytest.mark.parametrize("prefix", ["ab", "abcd", "abcdefgh"])  # config allows 2-8 chars
def test_longest_ids_fit_max_len_and_gate(prefix: str) -> None:
    factory = ClientIdFactory(prefix, "zzzzzzzz")
    room = MAX_CLIENT_ID_LEN - len(prefix) - 1 - RUN_TAG_LEN
    assert room >= 7  # 36**7 ~ 7.8e10 orders per run at the longest prefix
    factory._seq = 36**room - 3  # the next two are the last two sequence numbers that still fit
    longest = [factory.next(), factory.next()]
    assert longest[-1] == prefix + "_zzzzzzzz" + "z" * room
    for cid in longest:
        assert len(cid) == MAX_CLIENT_ID_LEN
        assert len("t-" + cid) <= GATE_MAX_TEXT_LEN
    with pytest.raises(OverflowError, match="exhausted"):
        factory.next()


def test_max_len_is_gate_compatible() -> None:
    assert len("t-") + MAX_CLIENT_ID_LEN <= GATE_MAX_TEXT_LEN


@pytest.mark.parametrize(
    ("prefix", "run_tag", "match"),
    [
        ("", "00000", "prefix"),
        ("ab-", "00000", "prefix"),
        ("a b", "00000", "prefix"),
        ("ab_", "00000", "prefix"),  # the delimiter can never be part of a prefix
        ("a.b", "00000", "prefix"),
        ("t-ab", "00000", "prefix"),
        ("AB", "00000", "prefix"),  # "AB" and "ab" would be two prefixes on a case-blind venue
        ("abcdefghi", "00000", "prefix"),  # 9 characters: longer than the schema allows
        ("ké", "00000", "prefix"),  # non-ASCII letter: str.isalnum() alone accepts it
        ("ab٣", "00000", "prefix"),  # Arabic-Indic digit
        ("ab²", "00000", "prefix"),  # superscript two
        ("ab", "", "run tag"),
        ("ab", "00-00", "run tag"),
        ("ab", "00_00", "run tag"),
        ("ab", "0000é", "run tag"),
        ("abcdefgh", "0" * 15, "no room"),
    ],
)
def test_invalid_prefix_or_run_tag_rejected(prefix: str, run_tag: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ClientIdFactory(prefix, run_tag)


# --- ownership -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("client_id", "own"),
    [
        ("kab12_000000001", True),  # this run
        ("kab12_zzzzzzzz1", True),  # another run of the same profile (after a restart)
        ("kab12_", True),
        ("kab12", False),  # no delimiter
        ("kab1_000000001", False),  # a profile whose prefix is the start of ours
        ("kab123_00000001", False),  # a profile whose prefix starts with ours
        ("kab12000001", False),  # the pre-delimiter format (legacy: see is_legacy)
        ("kcd34_00000001", False),  # another profile
        ("web_order_1", False),  # placed by hand on the exchange UI
        ("", False),
        ("KAB12_00000001", False),  # case matters
        ("xkab12_0000001", False),  # prefix must be at the start
    ],
)
def test_is_own(client_id: str, own: bool) -> None:
    factory = ClientIdFactory("kab12", "00000000")
    assert factory.is_own(client_id) is own


def test_profile_whose_prefix_starts_another_never_claims_its_ids() -> None:
    """Regression (issue 13.3): profile ``mm`` took profile ``mm1``'s ids for its own."""
    mm, mm1 = ClientIdFactory("mm"), ClientIdFactory("mm1")
    theirs = [mm1.next() for _ in range(500)]
    ours = [mm.next() for _ in range(500)]
    assert not any(mm.is_own(cid) for cid in theirs)
    assert not any(mm1.is_own(cid) for cid in ours)
    assert all(mm.is_own(cid) for cid in ours) and all(mm1.is_own(cid) for cid in theirs)


@pytest.mark.anyio
async def test_cancel_all_by_prefix_leaves_the_other_profiles_orders() -> None:
    """Regression (issue 13.3): a bot cancels with ``venue.cancel_all(ids.prefix)`` at start,
    in audits and at shutdown; ``mm``'s call cancelled ``mm1``'s orders too."""
    venue = SimVenue(SimVenueConfig(type="sim", seed=1), "KAS/USDT", VirtualClock())
    await venue.connect()
    mm, mm1 = ClientIdFactory("mm"), ClientIdFactory("mm1")
    for factory in (mm, mm1, mm, mm1):
        cid = factory.next()
        await venue.place_order(OrderRequest(cid, Side.BUY, Decimal("0.01"), Decimal(1000)))
    assert await venue.cancel_all(mm.prefix) == 2
    left = [o.client_id for o in await venue.fetch_open_orders()]
    assert len(left) == 2 and all(mm1.is_own(cid) for cid in left)
    await venue.close()


@pytest.mark.parametrize(
    ("client_id", "legacy"),
    [
        ("kab120000a1", True),  # prefix + 5-char tag + sequence, as kasmm made them before
        ("kab12zzzzzz", True),
        ("kab12zzzzz" + "z" * 14, True),  # 24 characters: the longest old id
        ("kab12zzzzz" + "z" * 15, False),  # 25: never an old id
        ("kab1200000", False),  # no sequence
        ("kab12000000", False),  # sequence 0 (sequences started at 1, base 36 has no leading 0)
        ("kab12_00000001", False),  # the new format
        ("kab12a_0001", False),
        ("kab1a0000a1", False),  # another prefix
        ("KAB120000a1", False),
        ("web_order_1", False),
    ],
)
def test_is_legacy_matches_the_exact_old_shape(client_id: str, legacy: bool) -> None:
    factory = ClientIdFactory("kab12")
    assert factory.is_legacy(client_id) is legacy
    assert not factory.is_own(client_id) or not legacy


def test_old_factory_ids_are_legacy() -> None:
    """What the previous format produced (``prefix + run_tag_for(t) + base36(seq)``)."""
    factory = ClientIdFactory("kab12")
    tag = ClientIdFactory.run_tag_for(1_732_525_123.4)
    for seq in (1, 35, 36, 36**6, 36**9 - 1):
        assert factory.is_legacy(f"kab12{tag}{base36(seq)}")
