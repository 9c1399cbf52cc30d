"""TokenBucket: bursts, exact waits in virtual time, weights, parents, FIFO, cancellation."""

from __future__ import annotations

import time

import anyio
import anyio.lowlevel
import pytest

from kasmm.clock import RealClock, VirtualClock
from kasmm.limiter import TokenBucket


class GatedClock(VirtualClock):
    """Virtual time whose sleepers park until the test opens the gate.

    VirtualClock jumps instantly, so a waiter never stays parked; this lets a test observe (and
    cancel) a waiter that holds a bucket's lock.
    """

    def __init__(self, start: float = 0.0) -> None:
        super().__init__(start)
        self.gate = anyio.Event()
        self.sleepers = 0

    async def sleep_until(self, deadline: float) -> None:
        self.sleepers += 1
        try:
            await self.gate.wait()
        finally:
            self.sleepers -= 1
        await super().sleep_until(deadline)


class SettableClock:
    """A clock the test sets freely, backwards included (a wall-clock step)."""

    is_virtual = True

    def __init__(self, now: float = 0.0) -> None:
        self.t = now

    def now(self) -> float:
        return self.t

    def wall(self) -> float:
        return self.t

    async def sleep_until(self, deadline: float) -> None:
        self.t = max(self.t, deadline)
        await anyio.lowlevel.checkpoint()


async def wait_for_sleepers(clock: GatedClock, n: int) -> None:
    """Let the other tasks run until ``n`` of them are parked in ``clock.sleep_until``."""
    with anyio.fail_after(5):
        while clock.sleepers < n:
            await anyio.lowlevel.checkpoint()


# --- construction ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("capacity", "refill"),
    [(0, 1), (-1, 1), (1, 0), (1, -0.5), (0, 0)],
)
def test_rejects_non_positive_capacity_or_refill(capacity: float, refill: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(capacity, refill, VirtualClock())


def test_starts_full() -> None:
    bucket = TokenBucket(7, 1, VirtualClock(), name="acct")
    assert bucket.tokens == 7.0
    assert bucket.capacity == 7.0
    assert bucket.name == "acct"
    assert bucket.parent is None


# --- bursts and exact waits ------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("capacity", [1, 3, 10, 2.5])
async def test_burst_up_to_capacity_does_not_wait(capacity: float) -> None:
    clock = VirtualClock(100.0)
    bucket = TokenBucket(capacity, 1, clock)
    for _ in range(int(capacity)):
        assert await bucket.acquire() == 0.0
    assert clock.now() == 100.0
    assert bucket.tokens == capacity - int(capacity)


# Numbers are binary-exact, so the waits are exactly (weight - tokens) / refill.
@pytest.mark.anyio
@pytest.mark.parametrize(
    ("capacity", "refill", "drain", "weight", "expected_wait"),
    [
        (4, 2, 4, 1, 0.5),  # empty, one token at 2/s
        (4, 2, 4, 3, 1.5),  # empty, three tokens
        (4, 2, 4, 4, 2.0),  # empty, a full bucket's worth
        (10, 4, 9, 3, 0.5),  # one token left, two missing at 4/s
        (1, 0.5, 1, 1, 2.0),  # slow refill
        (8, 8, 6, 2, 0.0),  # exactly enough left: no wait
        (8, 8, 6, 2.5, 0.0625),  # half a token missing at 8/s
    ],
)
async def test_next_acquire_waits_exactly_the_shortfall(
    capacity: float, refill: float, drain: float, weight: float, expected_wait: float
) -> None:
    clock = VirtualClock(1000.0)
    bucket = TokenBucket(capacity, refill, clock)
    assert await bucket.acquire(drain) == 0.0
    waited = await bucket.acquire(weight)
    assert waited == expected_wait
    assert clock.now() == 1000.0 + expected_wait
    assert bucket.tokens == (0.0 if expected_wait else capacity - drain - weight)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("capacity", "refill", "weights", "expected_waits", "expected_end"),
    [
        (10, 1, [4, 4, 4], [0, 0, 2], 2.0),
        (10, 1, [10, 1, 1], [0, 1, 1], 2.0),
        (10, 2, [3, 3, 3, 3, 3], [0, 0, 0, 1, 1.5], 2.5),
        (5, 5, [5, 5, 5], [0, 1, 1], 2.0),
        (4, 4, [1, 4, 2, 0.5], [0, 0.25, 0.5, 0.125], 0.875),
    ],
)
async def test_weighted_acquire_sequences(
    capacity: float,
    refill: float,
    weights: list[float],
    expected_waits: list[float],
    expected_end: float,
) -> None:
    clock = VirtualClock()
    bucket = TokenBucket(capacity, refill, clock)
    waits = [await bucket.acquire(w) for w in weights]
    assert waits == expected_waits
    assert clock.now() == expected_end


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("start", "refill", "n"),
    [
        (0.0, 3, 40),
        (0.0, 7, 40),
        (0.0, 10, 40),
        (0.0, 0.3, 20),
        (12345.678, 7, 40),
        (1.7e9, 3, 40),  # an epoch-sized virtual start: coarse float resolution
        (1.7e9 + 0.123, 11, 40),
    ],
)
async def test_rounding_of_elapsed_time_never_stalls_virtual_time(
    start: float, refill: float, n: int
) -> None:
    # Regression: after sleeping out a shortfall, float rounding could leave the bucket a hair
    # short, the next deadline rounded to ``now`` and acquire spun forever without time moving.
    clock = VirtualClock(start)
    bucket = TokenBucket(1, refill, clock)
    with anyio.fail_after(5):
        for _ in range(n):
            await bucket.acquire()
    assert clock.now() - start == pytest.approx((n - 1) / refill, rel=1e-6)


# --- refill ----------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("capacity", "refill", "idle", "expected"),
    [
        (4, 2, 0.0, 0.0),
        (4, 2, 0.5, 1.0),
        (4, 2, 1.5, 3.0),
        (4, 2, 2.0, 4.0),
        (4, 2, 3.0, 4.0),  # capped
        (4, 2, 1e6, 4.0),  # capped after a long idle
        (3, 0.25, 4.0, 1.0),
    ],
)
async def test_refill_is_linear_and_capped(
    capacity: float, refill: float, idle: float, expected: float
) -> None:
    clock = VirtualClock()
    bucket = TokenBucket(capacity, refill, clock)
    await bucket.acquire(capacity)
    clock.advance_to(idle)
    assert bucket.tokens == expected
    assert bucket.tokens <= bucket.capacity


@pytest.mark.anyio
async def test_long_idle_does_not_allow_more_than_capacity_burst() -> None:
    clock = VirtualClock()
    bucket = TokenBucket(3, 1, clock)
    clock.advance_to(1000.0)
    waits = [await bucket.acquire() for _ in range(5)]
    assert waits == [0, 0, 0, 1, 1]


def test_clock_stepping_backwards_neither_adds_nor_removes_tokens() -> None:
    clock = SettableClock(100.0)
    bucket = TokenBucket(4, 1, clock)
    assert bucket.try_acquire(4)
    clock.t = 50.0  # wall clock stepped back
    assert bucket.tokens == 0.0
    clock.t = 51.0  # one second after the step
    assert bucket.tokens == 1.0


# --- weight limits ---------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(("capacity", "weight"), [(1, 1.5), (5, 6), (5, 5.0001), (0.5, 1)])
async def test_weight_above_capacity_raises(capacity: float, weight: float) -> None:
    clock = VirtualClock()
    bucket = TokenBucket(capacity, 1, clock)
    with pytest.raises(ValueError, match="exceeds bucket capacity"):
        await bucket.acquire(weight)
    assert bucket.tokens == capacity  # nothing taken
    assert clock.now() == 0.0


@pytest.mark.anyio
@pytest.mark.parametrize("capacity", [1, 5, 2.5])
async def test_weight_equal_to_capacity_is_served(capacity: float) -> None:
    bucket = TokenBucket(capacity, 1, VirtualClock())
    assert await bucket.acquire(capacity) == 0.0
    assert await bucket.acquire(capacity) == capacity  # a full refill at 1/s


# --- try_acquire -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("capacity", "pre_take", "weight", "ok", "tokens_after"),
    [
        (5, 0, 1, True, 4.0),
        (5, 0, 5, True, 0.0),
        (5, 3, 2, True, 0.0),
        (5, 3, 2.5, False, 2.0),  # not enough: nothing taken
        (5, 5, 1, False, 0.0),
        (5, 0, 6, False, 5.0),  # above capacity: simply refused
        (5, 0, 0, True, 5.0),
    ],
)
def test_try_acquire(
    capacity: float, pre_take: float, weight: float, ok: bool, tokens_after: float
) -> None:
    bucket = TokenBucket(capacity, 1, VirtualClock())
    if pre_take:
        assert bucket.try_acquire(pre_take)
    assert bucket.try_acquire(weight) is ok
    assert bucket.tokens == tokens_after


def test_try_acquire_never_waits_but_sees_refill() -> None:
    clock = VirtualClock()
    bucket = TokenBucket(2, 4, clock)
    assert bucket.try_acquire(2)
    assert not bucket.try_acquire()
    assert clock.now() == 0.0
    clock.advance_to(0.25)
    assert bucket.try_acquire()
    assert not bucket.try_acquire()


@pytest.mark.parametrize(
    ("parent_take", "weight", "ok", "child_after", "parent_after"),
    [
        (0, 2, True, 8.0, 1.0),
        (2, 1, True, 9.0, 0.0),
        (2, 2, False, 10.0, 1.0),  # parent short: the child keeps its tokens
        (3, 1, False, 10.0, 0.0),
    ],
)
def test_try_acquire_draws_from_the_parent_too(
    parent_take: float, weight: float, ok: bool, child_after: float, parent_after: float
) -> None:
    clock = VirtualClock()
    parent = TokenBucket(3, 1, clock)
    child = TokenBucket(10, 1, clock, parent=parent)
    if parent_take:
        assert parent.try_acquire(parent_take)
    assert child.try_acquire(weight) is ok
    assert child.tokens == child_after
    assert parent.tokens == parent_after


@pytest.mark.anyio
async def test_try_acquire_does_not_jump_the_queue() -> None:
    clock = GatedClock()
    bucket = TokenBucket(10, 1, clock)
    assert bucket.try_acquire(7)  # 3 left
    done: list[float] = []

    async def heavy() -> None:
        done.append(await bucket.acquire(5))

    async with anyio.create_task_group() as tg:
        tg.start_soon(heavy)
        await wait_for_sleepers(clock, 1)
        assert bucket.tokens == 3.0
        assert not bucket.try_acquire(1)  # would be available, but the heavy waiter is first
        assert bucket.tokens == 3.0
        clock.gate.set()
    assert done == [2.0]
    assert bucket.tokens == 0.0
    assert bucket.try_acquire(0)


# --- parents ---------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("weights", "child_after", "parent_after"),
    [
        ([1], 9.0, 4.0),
        ([3], 7.0, 2.0),
        ([2, 3], 5.0, 0.0),
    ],
)
async def test_child_acquire_consumes_parent_tokens(
    weights: list[float], child_after: float, parent_after: float
) -> None:
    clock = VirtualClock()
    parent = TokenBucket(5, 1, clock)
    child = TokenBucket(10, 1, clock, parent=parent)
    for w in weights:
        assert await child.acquire(w) == 0.0
    assert child.tokens == child_after
    assert parent.tokens == parent_after


@pytest.mark.anyio
async def test_child_waits_for_the_parent_and_reports_the_total_wait() -> None:
    clock = VirtualClock()
    parent = TokenBucket(2, 1, clock)
    child = TokenBucket(10, 10, clock, parent=parent)
    assert await child.acquire(2) == 0.0
    assert await child.acquire(2) == 2.0  # the parent's refill is the bottleneck
    assert clock.now() == 2.0
    assert parent.tokens == 0.0


@pytest.mark.anyio
async def test_child_limited_by_its_own_rate_when_slower_than_parent() -> None:
    clock = VirtualClock()
    parent = TokenBucket(100, 100, clock)
    child = TokenBucket(1, 2, clock, parent=parent)
    waits = [await child.acquire() for _ in range(4)]
    assert waits == [0, 0.5, 0.5, 0.5]
    assert parent.tokens == 99.0  # refilled to the cap between requests, then one taken


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("parent_cap", "parent_refill", "per_child", "expected_end"),
    [
        (2, 1, 3, 4.0),  # 6 requests: 2 burst, then 4 at 1/s
        (4, 2, 2, 0.0),  # everything fits the burst
        (1, 4, 5, 2.25),  # 10 requests: 1 burst, then 9 at 4/s
    ],
)
async def test_children_sharing_a_parent_are_limited_by_the_parent(
    parent_cap: float, parent_refill: float, per_child: int, expected_end: float
) -> None:
    clock = VirtualClock()
    parent = TokenBucket(parent_cap, parent_refill, clock, name="account")
    children = [TokenBucket(100, 100, clock, parent=parent, name=f"p{i}") for i in range(2)]
    finished: list[float] = []

    async def run(child: TokenBucket) -> None:
        for _ in range(per_child):
            await child.acquire()
            finished.append(clock.now())

    async with anyio.create_task_group() as tg:
        for child in children:
            tg.start_soon(run, child)
    assert len(finished) == 2 * per_child
    assert max(finished) == expected_end
    assert sorted(finished) == finished  # virtual time only moves forward
    # Never more than the parent allows: burst + rate * elapsed.
    for i, t in enumerate(finished, start=1):
        assert i <= parent_cap + parent_refill * t + 1e-9


@pytest.mark.anyio
@pytest.mark.parametrize(("pre_weight", "child_before"), [(0, 10.0), (2, 8.0)])
async def test_parent_rejecting_the_weight_refunds_the_child(
    pre_weight: float, child_before: float
) -> None:
    clock = VirtualClock()
    parent = TokenBucket(2, 1, clock)
    child = TokenBucket(10, 1, clock, parent=parent)
    if pre_weight:
        assert await child.acquire(pre_weight) == 0.0
    assert child.tokens == child_before
    with pytest.raises(ValueError, match="exceeds bucket capacity 2"):
        await child.acquire(5)  # fits the child, never the account bucket
    assert child.tokens == child_before
    assert clock.now() == 0.0


@pytest.mark.anyio
@pytest.mark.parametrize("blocked_on", ["parent_sleep", "parent_lock"])
@pytest.mark.parametrize(("child_drain", "weight"), [(0, 2), (5, 3), (8, 2)])
async def test_cancelled_waiter_on_parent_gives_child_tokens_back(
    blocked_on: str, child_drain: float, weight: float
) -> None:
    clock = GatedClock()
    parent = TokenBucket(10, 1, clock)
    child = TokenBucket(10, 1, clock, parent=parent)
    other = TokenBucket(10, 1, clock, parent=parent)
    if child_drain:
        assert await child.acquire(child_drain) == 0.0
    assert parent.try_acquire(parent.tokens)  # the account is exhausted
    child_before = child.tokens
    assert child_before == 10 - child_drain
    parent_before = parent.tokens
    outcome: list[str] = []

    async def victim() -> None:
        try:
            await child.acquire(weight)
        except anyio.get_cancelled_exc_class():
            outcome.append("cancelled")
            raise
        outcome.append("acquired")  # pragma: no cover - must not happen

    async with anyio.create_task_group() as tg:
        if blocked_on == "parent_lock":
            # Another profile already waits on the account bucket and holds its lock.
            tg.start_soon(other.acquire, 1)
            await wait_for_sleepers(clock, 1)
        tg.start_soon(victim)
        # Wait until the victim has taken its own tokens and is queued on the parent.
        with anyio.fail_after(5):
            while child.tokens != child_before - weight:
                await anyio.lowlevel.checkpoint()
            if blocked_on == "parent_sleep":
                await wait_for_sleepers(clock, 1)
            else:
                while parent._lock.statistics().tasks_waiting < 1:
                    await anyio.lowlevel.checkpoint()
        assert outcome == []
        tg.cancel_scope.cancel()
    assert outcome == ["cancelled"]
    assert child.tokens == child_before  # refunded
    assert parent.tokens == parent_before  # and the parent was never charged
    assert not child._lock.locked()
    assert not parent._lock.locked()


# --- FIFO ------------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("requests", "expected"),
    [
        # A heavy waiter queued first is served first, light ones queue behind it.
        ([("heavy", 10), ("l1", 1), ("l2", 1), ("l3", 1)], [10, 11, 12, 13]),
        ([("l1", 1), ("heavy", 10), ("l2", 1)], [1, 11, 12]),
        ([("a", 3), ("b", 3), ("c", 3)], [3, 6, 9]),
        ([("a", 2), ("b", 5), ("c", 1), ("d", 4)], [2, 7, 8, 12]),
    ],
)
async def test_concurrent_waiters_are_served_in_arrival_order(
    requests: list[tuple[str, float]], expected: list[float]
) -> None:
    clock = VirtualClock()
    bucket = TokenBucket(10, 1, clock)
    await bucket.acquire(10)  # empty: everyone must wait
    done: list[tuple[str, float]] = []

    async def request(name: str, weight: float) -> None:
        await bucket.acquire(weight)
        done.append((name, clock.now()))

    async with anyio.create_task_group() as tg:
        for name, weight in requests:
            tg.start_soon(request, name, weight)
    assert [n for n, _ in done] == [n for n, _ in requests]
    assert [t for _, t in done] == expected


@pytest.mark.anyio
async def test_heavy_waiter_not_starved_by_later_light_requests() -> None:
    clock = GatedClock()
    bucket = TokenBucket(10, 1, clock)
    assert bucket.try_acquire(8)  # 2 left: light requests could go, the heavy one cannot
    done: list[str] = []

    async def request(name: str, weight: float) -> None:
        await bucket.acquire(weight)
        done.append(name)

    async with anyio.create_task_group() as tg:
        tg.start_soon(request, "heavy", 10)
        await wait_for_sleepers(clock, 1)
        for i in range(5):  # a stream of light requests arriving later
            tg.start_soon(request, f"light{i}", 1)
        for _ in range(20):
            await anyio.lowlevel.checkpoint()
        assert done == []  # nobody overtook the heavy waiter
        clock.gate.set()
    assert done == ["heavy", *(f"light{i}" for i in range(5))]
    assert clock.now() == 8 + 5  # heavy at t=8, then one light per second


# --- real time -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_real_clock_rate_limits_in_wall_time() -> None:
    bucket = TokenBucket(2, 50, RealClock())
    t0 = time.monotonic()
    with anyio.fail_after(5):
        waits = [await bucket.acquire() for _ in range(6)]
    elapsed = time.monotonic() - t0
    # 2 burst + 4 at 50/s = 0.08 s; generous bounds so a loaded machine does not flake.
    assert elapsed >= 0.07
    assert elapsed < 2.0
    assert all(w < 0.01 for w in waits[:2])  # the burst does not wait
    assert sum(waits) >= 0.07
