"""Generate ``tests/data/replay_sample.csv``: a small synthetic KAS/USDT market (replay format).

    .venv/bin/python tests/data/make_replay_sample.py [--seconds 300] [--seed 20241125] [--out PATH]

Deterministic for a seed. The market: a log-normal random-walk mid (3 bps per sqrt second from
0.08), a 5-level book a side snapshotted every second (best bid/ask 5 bps from the mid, levels 2
bps apart, sizes uniform in 2000..6000 KAS on the 0.01 lot), and Poisson trades between snapshots
(1.5 per second, taker buy or sell with probability 1/2, size exponential with mean 1500 KAS)
printing at the last snapshot's best opposite price, or one or two levels deeper (a sweep) one
time in five. Written with kasmm's own :class:`kasmm.backtest.replay.ReplayWriter`.
"""

from __future__ import annotations

import argparse
import math
import random
from decimal import Decimal
from pathlib import Path

from kasmm.backtest.replay import ReplayWriter
from kasmm.core.types import Book, BookLevel, MarketRules, Side
from kasmm.venues.public_data import PublicTrade

TICK = Decimal("0.000001")
LOT = Decimal("0.01")
RULES = MarketRules(
    symbol="KAS/USDT", base="KAS", quote="USDT", tick=TICK, lot=LOT, min_notional=Decimal(1)
)
START_TS = 1_700_000_000.0
LEVELS = 5


def snapshot(rng: random.Random, mid: float, ts: float) -> Book:
    """The book around ``mid``: integer-tick prices, strictly monotonic levels."""
    tick = float(TICK)
    bids: list[BookLevel] = []
    asks: list[BookLevel] = []
    for i in range(LEVELS):
        off = (5 + 2 * i) / 1e4
        bid = math.floor(mid * (1 - off) / tick)
        ask = math.ceil(mid * (1 + off) / tick)
        if bids:
            bid = min(bid, int(bids[-1].price / TICK) - 1)
            ask = max(ask, int(asks[-1].price / TICK) + 1)
        bids.append(BookLevel(bid * TICK, Decimal(rng.randint(200_000, 600_000)) * LOT))
        asks.append(BookLevel(ask * TICK, Decimal(rng.randint(200_000, 600_000)) * LOT))
    return Book(bids=tuple(bids), asks=tuple(asks), ts=ts)


def generate(path: Path, *, seconds: int, seed: int) -> ReplayWriter:
    """Write ``seconds`` seconds of market to ``path``."""
    rng = random.Random(seed)
    mid = 0.08
    sigma = 3 / 1e4
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = ReplayWriter(handle)
        writer.header(RULES, source="synthetic")
        for second in range(seconds):
            ts = START_TS + second
            book = snapshot(rng, mid, ts)
            writer.book(book)
            t = ts + rng.expovariate(1.5)
            while t < ts + 1:
                side = Side.BUY if rng.random() < 0.5 else Side.SELL
                levels = book.asks if side is Side.BUY else book.bids
                depth = 0 if rng.random() < 0.8 else rng.choice((1, 2))
                size = max(LOT, Decimal(int(rng.expovariate(1 / 1500) * 100)) * LOT)
                writer.trade(PublicTrade(levels[depth].price, size, side, round(t, 3), ""))
                t += rng.expovariate(1.5)
            mid *= math.exp(sigma * rng.gauss(0.0, 1.0))
    return writer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("--seed", type=int, default=20241125)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent / "replay_sample.csv"
    )
    args = parser.parse_args()
    writer = generate(args.out, seconds=args.seconds, seed=args.seed)
    print(f"{args.out}: {writer.books} books, {writer.trades} trades, {writer.rows} rows")


if __name__ == "__main__":
    main()
