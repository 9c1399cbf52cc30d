"""A shard turns its parent's death into exactly one SIGTERM (a second is a forced exit that
leaves orders open)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from types import FrameType

import pytest

from kasmm.fleet import child


@pytest.fixture
def terms() -> Iterator[list[int]]:
    """SIGTERMs this process receives while the test runs (counted, not acted on)."""
    seen: list[int] = []

    def count(signum: int, _frame: FrameType | None) -> None:
        seen.append(signum)

    previous_term = signal.signal(signal.SIGTERM, count)
    previous_usr1 = signal.getsignal(child.PARENT_DEATH_SIGNAL)
    child._parent_death_seen = False
    try:
        yield seen
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(child.PARENT_DEATH_SIGNAL, previous_usr1)
        child._parent_death_seen = False


def test_a_parent_death_becomes_one_sigterm(terms: list[int]) -> None:
    child._on_parent_death(child.PARENT_DEATH_SIGNAL, None)
    assert terms == [signal.SIGTERM]
    assert signal.getsignal(child.PARENT_DEATH_SIGNAL) == signal.SIG_IGN


def test_a_second_delivery_run_nested_in_the_first_sends_no_second_sigterm(
    terms: list[int],
) -> None:
    # The kernel signals once per thread of the dying parent. A delivery landing while the
    # first call runs, before it has ignored the signal, runs the handler again nested in it
    # (CPython checks for pending handlers inside signal.signal() itself): a second call.
    child._on_parent_death(child.PARENT_DEATH_SIGNAL, None)
    child._on_parent_death(child.PARENT_DEATH_SIGNAL, None)
    assert terms == [signal.SIGTERM]
