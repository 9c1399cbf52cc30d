"""``kasmm report --since``: durations, epoch seconds, ISO 8601 times."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kasmm.report.period import PeriodError, fmt_utc, parse_since

NOW = datetime(2024, 5, 2, 12, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("text", "back"),
    [
        ("90s", 90),
        ("30m", 1800),
        ("24h", 86400),
        ("24H", 86400),
        ("7d", 7 * 86400),
        ("2w", 14 * 86400),
        ("1h30m", 5400),
        ("1.5h", 5400),
        (" 10m ", 600),
    ],
)
def test_durations_count_back_from_now(text: str, back: float) -> None:
    assert parse_since(text, NOW) == NOW - back


def test_epoch_seconds() -> None:
    assert parse_since("1714560000", NOW) == 1714560000.0
    assert parse_since("1714560000.5", NOW) == 1714560000.5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC)),
        ("2024-05-01T12:30", datetime(2024, 5, 1, 12, 30, tzinfo=UTC)),
        ("2024-05-01T12:30:00Z", datetime(2024, 5, 1, 12, 30, tzinfo=UTC)),
        ("2024-05-01T14:30:00+02:00", datetime(2024, 5, 1, 12, 30, tzinfo=UTC)),
        ("2024-05-01 12:30:00", datetime(2024, 5, 1, 12, 30, tzinfo=UTC)),
    ],
)
def test_iso_times_are_utc_unless_they_say_otherwise(text: str, expected: datetime) -> None:
    assert parse_since(text, NOW) == expected.timestamp()


@pytest.mark.parametrize("text", ["", "yesterday", "24x", "h", "-5m", "2024-13-01", "nan", "1e9"])
def test_garbage_is_refused_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(PeriodError, match=r"--since|empty"):
        parse_since(text, NOW)


def test_a_start_in_the_future_is_refused() -> None:
    with pytest.raises(PeriodError, match="future"):
        parse_since("2030-01-01", NOW)
    with pytest.raises(PeriodError, match="future"):
        parse_since("99999999999999999999", NOW)


def test_fmt_utc() -> None:
    assert fmt_utc(NOW) == "2024-05-02 12:00:00 UTC"
    assert fmt_utc(NOW, seconds=False) == "2024-05-02 12:00 UTC"
    assert fmt_utc(1e300).startswith("epoch")
